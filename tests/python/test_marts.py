"""dbt build on a real embedded store, checked against an exact numpy computation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bildsuche.dbt import run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from datasets_helpers import SyntheticDataset, built_store, write_synthetic
from marts_reference import reference
from seeds_loader import load

pytestmark = pytest.mark.slow

HOSTILE_IDS = ("x' OR 1=1 --", "back\\slash'); DROP TABLE raw.photos; --")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SyntheticDataset, Path]]:
    root = tmp_path_factory.mktemp("marts")
    data = write_synthetic(root / "dataset", extra_ids=HOSTILE_IDS)
    yield data, built_store(root, data, {"target_photo_id": "p0005", "top_k": 10})


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with client_for("embedded", path=store) as client:
        return list(client.query(sql).result_rows)


def rebuild_marts(store: Path, **dbt_vars: Any) -> None:
    run_dbt(["build", "--select", "top_k_neighbours+"], db_path=store, dbt_vars=dbt_vars, quiet=True)


def assert_marts_match(data: SyntheticDataset, store: Path, target: str, k: int, top_keywords: int = 10) -> None:
    ref = reference(data, target, k, top_keywords)
    rows = query(store, "SELECT target_photo_id, photo_id, dist, rank FROM analytics.top_k_neighbours ORDER BY rank")
    assert len(rows) == k
    assert {r[0] for r in rows} == {target}
    assert [r[3] for r in rows] == list(range(1, k + 1))
    assert {r[1] for r in rows} == {pid for pid, _ in ref.neighbours}
    got = {r[1]: r[2] for r in rows}
    for pid, dist in ref.neighbours:
        assert got[pid] == pytest.approx(dist, abs=2e-6)
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)

    downloads = dict(query(store, "SELECT photo_id, downloads FROM analytics.conversions_per_candidate"))
    assert downloads == ref.downloads

    keywords = query(
        store, "SELECT photo_id, keyword, downloads FROM analytics.keyword_breakdown ORDER BY downloads DESC, keyword"
    )
    assert [(kw, n) for _, kw, n in keywords] == ref.keywords
    assert {pid for pid, _, _ in keywords} <= {ref.top_candidate}


def test_marts_equal_exact_search(built: tuple[SyntheticDataset, Path]) -> None:
    data, store = built
    assert_marts_match(data, store, "p0005", 10)


@pytest.mark.parametrize("target,k", [("-p0017", 3), ("p0100", 25)])
def test_other_targets_and_k(built: tuple[SyntheticDataset, Path], target: str, k: int) -> None:
    data, store = built
    rebuild_marts(store, target_photo_id=target, top_k=k)
    assert_marts_match(data, store, target, k)


def test_top_keywords_keeps_the_most_downloaded(built: tuple[SyntheticDataset, Path]) -> None:
    # Fewer keywords kept than the top candidate has: the limit must cut the least downloaded.
    data, store = built
    ref = reference(data, "p0005", 10, top_keywords=1000)
    assert len(ref.keywords) > 3 and ref.keywords[2][1] > ref.keywords[-1][1]
    rebuild_marts(store, target_photo_id="p0005", top_k=10, top_keywords=3)
    try:
        assert_marts_match(data, store, "p0005", 10, top_keywords=3)
    finally:
        rebuild_marts(store, target_photo_id="p0005", top_k=10)


def test_hostile_ids_are_plain_strings(built: tuple[SyntheticDataset, Path]) -> None:
    data, store = built
    photos_before = query(store, "SELECT count() FROM raw.photos")
    for hostile in HOSTILE_IDS:
        rebuild_marts(store, target_photo_id=hostile, top_k=5)
        assert_marts_match(data, store, hostile, 5)
    assert query(store, "SELECT count() FROM raw.photos") == photos_before


def test_unknown_target_is_a_clear_error_and_changes_nothing(built: tuple[SyntheticDataset, Path]) -> None:
    _, store = built
    rebuild_marts(store, target_photo_id="p0005", top_k=10)
    before = query(store, "SELECT * FROM analytics.top_k_neighbours ORDER BY rank")
    counts = query(store, "SELECT (SELECT count() FROM raw.photos), (SELECT count() FROM raw.conversions)")
    for attempt in ("y' OR 1=1 --", "nope') UNION ALL SELECT 1 --", "p0005' --"):
        with pytest.raises(DbtRunError, match="is not a photo in"):
            rebuild_marts(store, target_photo_id=attempt, top_k=10)
    assert query(store, "SELECT * FROM analytics.top_k_neighbours ORDER BY rank") == before
    assert query(store, "SELECT (SELECT count() FROM raw.photos), (SELECT count() FROM raw.conversions)") == counts


@pytest.mark.parametrize("bad_k", ["10; DROP TABLE raw.photos", "0", "-3", "ten"])
def test_bad_top_k_is_refused(built: tuple[SyntheticDataset, Path], bad_k: str) -> None:
    _, store = built
    with pytest.raises(DbtRunError, match="var 'top_k' must be a whole number"):
        rebuild_marts(store, target_photo_id="p0005", top_k=bad_k)
    assert query(store, "SELECT count() FROM raw.photos") == [(240,)]


def test_random_target_is_reproducible(built: tuple[SyntheticDataset, Path]) -> None:
    data, store = built
    targets = []
    for seed in (42, 42, 7, 1234):
        rebuild_marts(store, target_seed=seed, top_k=4)
        (target,) = {r[0] for r in query(store, "SELECT target_photo_id FROM analytics.top_k_neighbours")}
        targets.append(target)
        assert_marts_match(data, store, target, 4)
    assert targets[0] == targets[1]
    assert len(set(targets)) > 1


def test_k_larger_than_the_collection_returns_every_other_photo(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "small", n=6)
    store = tmp_path / "small-store"
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
    run_dbt(["build"], db_path=store, dbt_vars={"target_photo_id": "p0002", "top_k": 10}, quiet=True)
    assert_marts_match(data, store, "p0002", 5)


def explain(store: Path, sql: str) -> str:
    return "\n".join(r[0] for r in query(store, "EXPLAIN indexes = 1 " + sql))


def test_top_k_query_is_answered_by_the_vector_index(built: tuple[SyntheticDataset, Path]) -> None:
    _, store = built
    run_dbt(
        ["compile", "--select", "top_k_neighbours"], db_path=store, dbt_vars={"target_photo_id": "p0005"}, quiet=True
    )
    compiled = Path(os.environ["DBT_TARGET_PATH"]) / "compiled/bildsuche/models/marts/top_k_neighbours.sql"
    plan = explain(store, compiled.read_text())
    assert "Name: photo_embed_idx" in plan, plan[-2000:]


def test_tutorial_style_distance_queries_run_on_the_index(built: tuple[SyntheticDataset, Path]) -> None:
    data, store = built
    vector = "[" + ", ".join(f"{v:.8f}" for v in data.embeddings[data.index("p0005")]) + "]"
    sql = f"SELECT photo_id, distance(photo_embed, {vector}) AS dist FROM analytics.photos ORDER BY dist LIMIT 5"
    assert "Name: photo_embed_idx" in explain(store, sql)
    rows = query(store, sql)
    assert [r[0] for r in rows] == ["p0005"] + [pid for pid, _ in reference(data, "p0005", 4).neighbours]


@pytest.mark.parametrize("target,k", [("p0005", 10), ("x' OR 1=1 --", 3)])
def test_parameterized_neighbours_view_equals_exact_search(
    built: tuple[SyntheticDataset, Path], target: str, k: int
) -> None:
    data, store = built
    literal = "'" + target.replace("\\", "\\\\").replace("'", "\\'") + "'"
    sql = f"SELECT photo_id, dist, rank FROM analytics.neighbours(photo_id = {literal}, k = {k}) ORDER BY rank"
    rows = query(store, sql)
    ref = reference(data, target, k)
    assert [r[0] for r in rows] == [pid for pid, _ in ref.neighbours]
    assert [r[2] for r in rows] == list(range(1, k + 1))
    assert "Name: photo_embed_idx" in explain(store, sql)


def test_hnsw_ef_search_reaches_the_engine(built: tuple[SyntheticDataset, Path], tmp_path: Path) -> None:
    data, store = built
    try:
        run_dbt(
            ["run", "--select", "top_k_neighbours", "--target-path", str(tmp_path)],
            db_path=store,
            dbt_vars={"target_photo_id": "p0005", "hnsw_ef_search": 77},
            quiet=True,
        )
        statement = (tmp_path / "run" / "bildsuche" / "models" / "marts" / "top_k_neighbours.sql").read_text()
        assert "hnsw_candidate_list_size_for_search=77" in statement
        assert "vector_search_with_rescoring=1" in statement
        with pytest.raises(DbtRunError, match="var 'hnsw_ef_search' must be a whole number from 1 to 100000"):
            rebuild_marts(store, target_photo_id="p0005", hnsw_ef_search=0)
    finally:
        rebuild_marts(store, target_photo_id="p0005", top_k=10)
    assert_marts_match(data, store, "p0005", 10)
