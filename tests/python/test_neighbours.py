"""photo_neighbours: exact against numpy, and incremental (only what changed is searched)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt.adapters.chdb import neighbours
from PIL import Image

from bildsuche.dbt import run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from datasets_helpers import built_store, clustered_embeddings, conversions_table, photos_table, write_synthetic
from python_embed.build import build
from python_embed.embedder import ClipEmbedder
from python_embed.sample import generate_sample
from seeds_loader import load

pytestmark = pytest.mark.slow

K = 10


def exact_lists(ids: list[str], x: np.ndarray, k: int) -> dict[str, list[str]]:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    dist = 1.0 - x @ x.T
    np.fill_diagonal(dist, np.inf)
    return {pid: [ids[j] for j in np.argsort(dist[i], kind="stable")[:k]] for i, pid in enumerate(ids)}


def stored_lists(store: Path) -> tuple[dict[str, list[str]], dict[str, dt.datetime]]:
    with client_for("embedded", path=store) as client:
        rows = client.query(
            "select photo_id, neighbour_id, computed_at from analytics.photo_neighbours order by photo_id, rank"
        ).result_rows
    lists: dict[str, list[str]] = {}
    when: dict[str, dt.datetime] = {}
    for pid, nid, at in rows:
        lists.setdefault(pid, []).append(nid)
        when[pid] = at
    return lists, when


def recall(got: dict[str, list[str]], truth: dict[str, list[str]]) -> float:
    hits = sum(len(set(got.get(pid, [])) & set(nb)) for pid, nb in truth.items())
    return hits / sum(len(nb) for nb in truth.values())


def test_every_photo_gets_its_exact_neighbours(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "dataset", n=300)
    store = built_store(tmp_path, data, {"neighbours_k": K})
    lists, _ = stored_lists(store)
    truth = exact_lists(data.photo_ids, data.embeddings, K)
    assert set(lists) == set(data.photo_ids)
    assert all(len(nb) == K for nb in lists.values())
    assert recall(lists, truth) >= 0.99
    with client_for("embedded", path=store) as client:
        rows = client.query(
            "select photo_id, groupArray(rank), groupArray(dist), countIf(photo_id = neighbour_id)"
            " from (select * from analytics.photo_neighbours order by photo_id, rank) group by photo_id"
        ).result_rows
    for _, ranks, dists, self_pairs in rows:
        assert ranks == list(range(1, K + 1))
        assert dists == sorted(dists)
        assert self_pairs == 0


def _write_photos(directory: Path, ids: list[str], x: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(photos_table(ids, x), directory / "photos.parquet")
    pq.write_table(conversions_table([(ids[0], "sky")]), directory / "conversions.parquet")


def test_an_update_searches_only_what_changed(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = clustered_embeddings(400, 64, rng)
    ids = [f"p{i:04d}" for i in range(400)]
    first_ids, first_x = ids[:390], x[:390]
    _write_photos(tmp_path / "v1", first_ids, first_x)
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, tmp_path / "v1", dim=64)
    vars_ = {"neighbours_k": K}
    run_dbt(["build"], db_path=store, dbt_vars=vars_, quiet=True)
    before, when_before = stored_lists(store)

    # Second load: 10 new photos, 3 removed, 1 embedding changed.
    removed = {"p0003", "p0100", "p0200"}
    changed = "p0050"
    second_ids = [pid for pid in ids if pid not in removed]
    second_x = np.stack([x[ids.index(pid)] for pid in second_ids])
    second_x[second_ids.index(changed)] = clustered_embeddings(1, 64, np.random.default_rng(99))[0]
    _write_photos(tmp_path / "v2", second_ids, second_x)
    with client_for("embedded", path=store) as client:
        load(client, tmp_path / "v2", dim=64)
    run_dbt(["run", "--select", "photos", "photo_neighbours"], db_path=store, dbt_vars=vars_, quiet=True)
    after, when_after = stored_lists(store)

    truth = exact_lists(second_ids, second_x, K)
    assert set(after) == set(second_ids)
    assert recall(after, truth) >= 0.99

    new = set(ids[390:]) | {changed}
    stale = {pid for pid, nb in before.items() if pid not in removed | {changed} and set(nb) & (removed | {changed})}
    touched = {pid for pid in after if when_after[pid] != when_before.get(pid)}
    # Searched again: new photos and photos that lost a neighbour; the rest only
    # take in a new photo when it is nearer than their k-th neighbour.
    merged = {pid for pid, nb in truth.items() if set(nb) & new} - new - stale
    assert touched == new | stale | merged
    untouched = set(after) - touched
    assert len(untouched) > len(after) / 2
    assert all(after[pid] == before[pid] for pid in untouched)

    # A full refresh computes the same lists.
    run_dbt(["run", "--select", "photo_neighbours", "--full-refresh"], db_path=store, dbt_vars=vars_, quiet=True)
    full, _ = stored_lists(store)
    assert full == after


def test_changing_k_recomputes_every_list(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "dataset", n=60)
    store = built_store(tmp_path, data, {"neighbours_k": 5})
    run_dbt(["run", "--select", "photo_neighbours"], db_path=store, dbt_vars={"neighbours_k": 7}, quiet=True)
    lists, _ = stored_lists(store)
    assert all(len(nb) == 7 for nb in lists.values())
    assert recall(lists, exact_lists(data.photo_ids, data.embeddings, 7)) >= 0.99


@pytest.mark.parametrize("bad", ["0", "-3", "ten", "5; drop table raw.photos"])
def test_bad_neighbours_k_is_refused_and_nothing_changes(tmp_path: Path, bad: str) -> None:
    data = write_synthetic(tmp_path / "dataset", n=40)
    store = built_store(tmp_path, data, {"neighbours_k": 4})
    before, _ = stored_lists(store)
    with pytest.raises(DbtRunError, match="neighbours_k"):
        run_dbt(["run", "--select", "photo_neighbours"], db_path=store, dbt_vars={"neighbours_k": bad}, quiet=True)
    assert stored_lists(store)[0] == before


def test_more_photos_than_the_limit_are_refused_before_any_work(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "dataset", n=40)
    store = built_store(tmp_path, data, {"neighbours_k": 4})
    before, _ = stored_lists(store)
    with pytest.raises(DbtRunError, match="40 photos exceed neighbours_max_photos"):
        run_dbt(
            ["run", "--select", "photo_neighbours"],
            db_path=store,
            dbt_vars={"neighbours_k": 5, "neighbours_max_photos": 39},
            quiet=True,
        )
    assert stored_lists(store)[0] == before


def test_zero_vectors_are_refused_with_the_photo_named() -> None:
    x = np.ones((3, 4), np.float32)
    x[1] = 0
    table = photos_table(["a", "b", "c"], x).append_column("photo_embed_hash", pa.array([1, 2, 3], pa.uint64()))
    with pytest.raises(neighbours.NeighboursError, match="'b'"):
        neighbours.vectors_from_arrow(table, neighbours.Columns("photo_id", "photo_embed"))


def test_resized_and_recompressed_copies_are_near_duplicates(tmp_path: Path, demo_model_dir: Path) -> None:
    images = tmp_path / "images"
    generate_sample(images, photos=40)
    original = sorted(images.glob("*.jpg"))[5]
    picture = Image.open(original)
    picture.resize((picture.width * 2 // 3, picture.height * 2 // 3)).save(images / "zz-copy.jpg", quality=55)
    picture.save(images / "zz-exact.png")
    embedder = ClipEmbedder(str(demo_model_dir))
    build(str(images), tmp_path / "dataset", lambda: embedder)
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, tmp_path / "dataset")
    # The tiny random test model puts all photos close together (distinct
    # pictures >= 1e-4 apart); CLIP ViT-B/32 needs the default threshold.
    run_dbt(["build"], db_path=store, dbt_vars={"near_duplicate_threshold": 6e-5}, quiet=True)
    with client_for("embedded", path=store) as client:
        pairs = client.query("select photo_id, duplicate_id, dist from analytics.near_duplicates").result_rows
    group = {original.stem, "zz-copy", "zz-exact"}
    assert {(a, b) for a, b, _ in pairs} == {(a, b) for a in group for b in group if a != b}
    exact = {d for a, b, d in pairs if {a, b} == {original.stem, "zz-exact"}}
    assert max(exact) < 1e-6
