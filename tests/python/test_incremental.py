"""Nightly runs: load -> build -> change -> build -> change -> build equals a full build of the last night.

The store built night by night (analytics.photos incremental, seeds_loader
loading changes) must answer every mart as a store built once from the last
night's data: same rows, no removed photo anywhere, changed embeddings used,
top-K equal to exact search; and the graph of generation 0 is never rebuilt.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bildsuche.dataset import SavedQuery
from bildsuche.dbt import environment, run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from datasets_helpers import SyntheticDataset
from marts_reference import reference
from nightly_helpers import first_night, marts, next_night, write_night
from seeds_loader import load, save_query

pytestmark = pytest.mark.slow

TARGET, K = "p0005", 10
# Merged every night: the merge of the open generation runs in every test night.
VARS = {"target_photo_id": TARGET, "top_k": K, "photos_generation_parts": 1}


def nearest(data: SyntheticDataset, photo_id: str, n: int) -> list[str]:
    x = data.embeddings
    sims = x @ x[data.index(photo_id)]
    return [data.photo_ids[i] for i in np.argsort(-sims) if data.photo_ids[i] != photo_id][:n]


def saved_search(data: SyntheticDataset) -> SavedQuery:
    vector = data.embeddings[data.index("p0100")] + data.embeddings[data.index("p0101")]
    return SavedQuery("two photos", "image", "test", "synthetic-clip", (vector / np.linalg.norm(vector)).tolist())


def build(store: Path, root: Path, *args: str) -> None:
    with environment({"DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs")}):
        run_dbt(["build", *args], db_path=store, dbt_vars=VARS, quiet=True)


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with client_for("embedded", path=store) as client:
        return list(client.query(sql).result_rows)


def base_parts(store: Path) -> list[tuple[str, list[tuple[str, int]]]]:
    """The data parts of generation 0: block range and level (a merge changes them), and the inodes
    of their index files. Deleting rows gives a part a new version whose files are hard links of
    the old ones, the graph's included; rebuilding the graph writes a new file."""
    rows = query(
        store,
        "SELECT name, path FROM system.parts WHERE database = 'analytics' AND table = 'photos' AND active "
        "AND partition_id = '0' ORDER BY name",
    )
    return [
        (
            "_".join(name.split("_")[:4]),
            sorted((f.name, f.stat().st_ino) for f in Path(path).iterdir() if f.name.startswith("skp_idx")),
        )
        for name, path in rows
    ]


@dataclass
class Nights:
    root: Path
    nights: list[SyntheticDataset]
    removed: set[str]
    changed: list[str]
    incremental: Path
    fresh: Path
    parts_after_first: list[tuple[str, list[tuple[str, int]]]]


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    root = tmp_path_factory.mktemp("nights")
    d0 = first_night(root / "d0")
    # Night 1 removes the target's 4 nearest photos (deleted rows among the index's candidates),
    # re-embeds 6 (one into a near copy of another, one next to the target) and adds 30.
    gone1 = [*nearest(d0, TARGET, 4), "p0033", "p0200"]
    changed1 = ["p0010", "p0011", "p0012", "p0013", "p0050", "p0053"]
    d1 = next_night(
        d0, root / "d1", remove=gone1, change=changed1, add=30, seed=1, near={"p0050": "p0060", "p0053": TARGET}
    )
    # Night 2 removes some of night 1's new photos and an old one, re-embeds others, adds 20.
    gone2 = ["n0241", "n0250", "p0120"]
    changed2 = ["p0010", "n0245", "p0070"]
    d2 = next_night(d1, root / "d2", remove=gone2, change=changed2, add=20, seed=2, near={"p0070": "p0071"})

    incremental = root / "incremental"
    with client_for("embedded", path=incremental) as client:
        load(client, d0.directory)
        save_query(client, saved_search(d0))
    build(incremental, root)
    parts_after_first = base_parts(incremental)
    for data in (d1, d2):
        with client_for("embedded", path=incremental) as client:
            report = load(client, data.directory)
            assert "photos" in report.changes  # loaded as its changes, not whole
        build(incremental, root)

    fresh = root / "fresh"
    with client_for("embedded", path=fresh) as client:
        load(client, d2.directory)
        save_query(client, saved_search(d0))
    build(fresh, root)
    yield Nights(
        root, [d0, d1, d2], set(gone1) | set(gone2), sorted(set(changed1) | set(changed2)), incremental, fresh,
        parts_after_first,
    )  # fmt: skip


def test_every_mart_equals_a_full_build_of_the_last_night(nights: Nights) -> None:
    got, want = marts(nights.incremental), marts(nights.fresh)
    for name in want:
        assert got[name] == want[name], name


def test_top_k_equals_exact_search_and_steps_over_deleted_photos(nights: Nights) -> None:
    last = nights.nights[-1]
    ref = reference(last, TARGET, K)
    rows = query(nights.incremental, "SELECT photo_id, dist FROM analytics.top_k_neighbours ORDER BY rank")
    assert [pid for pid, _ in rows] == [pid for pid, _ in ref.neighbours]
    assert dict(rows) == pytest.approx(dict(ref.neighbours), abs=2e-6)
    # The live view too, for photos whose nearest were deleted or re-embedded.
    for photo in (TARGET, "p0060", "p0071"):
        live = query(nights.incremental, f"SELECT photo_id FROM analytics.neighbours(photo_id = '{photo}', k = {K})")
        assert [r[0] for r in live] == [pid for pid, _ in reference(last, photo, K).neighbours], photo


def test_no_removed_photo_is_left_anywhere(nights: Nights) -> None:
    columns = query(
        nights.incremental,
        "SELECT table, name FROM system.columns WHERE database = 'analytics' AND type = 'String' "
        "AND name IN ('photo_id', 'neighbour_id', 'duplicate_id', 'target_photo_id') "
        "AND table NOT IN ('neighbours', 'filtered_neighbours')",
    )
    assert len(columns) >= 8
    removed = ", ".join(f"'{pid}'" for pid in sorted(nights.removed))
    for table, column in columns:
        left = query(nights.incremental, f"SELECT {column} FROM analytics.{table} WHERE {column} IN ({removed})")
        assert left == [], f"analytics.{table}.{column}"


def test_changed_embeddings_are_the_ones_used(nights: Nights) -> None:
    last = nights.nights[-1]
    rows = dict(query(nights.incremental, "SELECT photo_id, photo_embed FROM analytics.photos"))
    for pid in nights.changed:
        np.testing.assert_array_equal(np.array(rows[pid], np.float32), last.embeddings[last.index(pid)])
    assert len(rows) == len(last.photo_ids)


def test_the_graph_of_generation_0_is_never_rebuilt(nights: Nights) -> None:
    # The same part, and the same graph file: no merge or index build touched generation 0.
    assert base_parts(nights.incremental) == nights.parts_after_first
    assert nights.parts_after_first[0][1]  # (the index files are there to compare)
    layout = query(
        nights.incremental,
        "SELECT partition_id, count(), sum(rows), min(secondary_indices_compressed_bytes > 0) FROM system.parts "
        "WHERE database = 'analytics' AND table = 'photos' AND active AND NOT startsWith(partition_id, 'patch-') "
        "GROUP BY partition_id ORDER BY partition_id",
    )
    assert [row[0] for row in layout] == ["0", "1"]  # 55 new rows: one open generation
    assert all(row[1] == 1 and row[3] == 1 for row in layout)  # merged into one part, indexed


def test_a_night_without_changes_changes_nothing(nights: Nights, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(nights.incremental, store, symlinks=True)
    before = query(store, "SELECT name FROM system.parts WHERE database = 'analytics' AND table = 'photos' AND active")
    with client_for("embedded", path=store) as client:
        report = load(client, nights.nights[-1].directory)
    assert report.unchanged == ["photos", "conversions"] and report.rows == {}
    build(store, tmp_path)
    after = query(store, "SELECT name FROM system.parts WHERE database = 'analytics' AND table = 'photos' AND active")
    assert sorted(after) == sorted(before)
    assert marts(store) == marts(nights.incremental)


def test_full_refresh_rebuilds_one_generation_with_the_same_marts(nights: Nights, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(nights.incremental, store, symlinks=True)
    build(store, tmp_path, "--full-refresh")
    layout = query(
        store,
        "SELECT DISTINCT partition_id FROM system.parts WHERE database = 'analytics' AND table = 'photos' AND active",
    )
    assert layout == [("0",)]  # one generation, no patch parts
    assert marts(store) == marts(nights.fresh)


def test_a_part_without_its_index_fails_vector_index_built(nights: Nights, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(nights.incremental, store, symlinks=True)
    with client_for("embedded", path=store) as client:
        client.command(
            "INSERT INTO analytics.photos SELECT id + 100000, concat(photo_id, '-copy'), photo_image_url, photo_embed, "
            "embed_model, content_hash, 1 FROM analytics.photos LIMIT 3 SETTINGS materialize_skip_indexes_on_insert = 0"
        )
    with (
        environment({"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}),
        pytest.raises(DbtRunError, match="vector_index_built"),
    ):
        run_dbt(["test", "--select", "photos,test_name:vector_index_built"], db_path=store, quiet=True)


def test_photos_of_another_model_wait_for_a_full_refresh(nights: Nights, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(nights.incremental, store, symlinks=True)
    last = nights.nights[-1]
    shorter = last.embeddings[:, :256] / np.linalg.norm(last.embeddings[:, :256], axis=1, keepdims=True)
    other = write_night(tmp_path / "other", last.photo_ids, shorter, [], model="other-clip")
    photos_before = query(store, "SELECT sum(content_hash), count() FROM analytics.photos")
    with client_for("embedded", path=store) as client:
        load(client, other.directory, full_refresh=True)
        client.command("TRUNCATE TABLE raw.search_queries")  # saved with the old model: its own test's subject
    with pytest.raises(DbtRunError, match=r"other-clip \(256-d\).*synthetic-clip \(512-d\).*--full-refresh"):
        build(store, tmp_path, "--select", "stg_photos", "photos")
    assert query(store, "SELECT sum(content_hash), count() FROM analytics.photos") == photos_before
    build(store, tmp_path, "--full-refresh", "--select", "stg_photos", "photos")
    assert query(store, "SELECT DISTINCT embed_model, length(photo_embed) FROM analytics.photos") == [
        ("other-clip", 256)
    ]
