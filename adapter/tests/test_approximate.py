"""The approximate all-pairs search (k-means cells, bf16 products, float32 re-scoring):
recall against exact search where the data have cells to find, incremental updates,
and the method switch with its exact fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from dbt.adapters.chdb import allpairs, neighbours
from dbt.adapters.chdb.engine import connect

SOURCE = "select item_id, vec from lab.items"
TARGET = neighbours.Target("lab", "near", "lab.near", "lab.near__new")
COLUMNS = neighbours.Columns("item_id", "vec", "near_id")
K = 10


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Many tight clusters, each spread in a few directions: data with cells to find."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    bases = rng.standard_normal((clusters, 4, dim)) / np.sqrt(dim)
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + np.einsum("nr,nrd->nd", rng.standard_normal((n, 4)), bases[labels])
    x += 0.05 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact(x: np.ndarray, k: int) -> np.ndarray:
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


@pytest.fixture()
def client(tmp_path: Path) -> Any:
    client = connect(tmp_path / "store")
    client.command("create database lab")
    client.command("create table lab.items (item_id String, vec Array(Float32)) engine = MergeTree order by item_id")
    yield client
    client.close()


def insert(client: Any, ids: list[str], x: np.ndarray) -> None:
    offsets = pa.array(np.arange(0, (len(x) + 1) * x.shape[1], x.shape[1], dtype=np.int32))
    vec = pa.ListArray.from_arrays(offsets, pa.array(x.reshape(-1), type=pa.float32()))
    client.insert_arrow("lab.items", pa.table({"item_id": ids, "vec": vec}))


def stored(client: Any) -> dict[str, list[tuple[str, float]]]:
    rows = client.query("select item_id, near_id, dist from lab.near order by item_id, rank").result_rows
    lists: dict[str, list[tuple[str, float]]] = {}
    for item, near, dist in rows:
        lists.setdefault(item, []).append((near, dist))
    return lists


def recall(lists: dict[str, list[tuple[str, float]]], ids: list[str], truth: np.ndarray) -> float:
    hits = sum(len({n for n, _ in lists[ids[i]]} & {ids[j] for j in row}) for i, row in enumerate(truth))
    return hits / truth.size


def test_approximate_lists_reach_the_recall_with_exact_distances(client: Any) -> None:
    x = clustered(6000, 48, 120, seed=1)
    ids = [f"i{i:05d}" for i in range(len(x))]
    insert(client, ids, x)
    stats = neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, method="approximate", recall=0.95)
    assert stats.method == "approximate"
    assert stats.sample_recall is not None and stats.sample_recall >= 0.95
    # the cells spare most of the products
    lists = stored(client)
    assert set(lists) == set(ids)
    assert all(len(nb) == K for nb in lists.values())
    assert recall(lists, ids, exact(x, K)) >= 0.95
    index = {pid: i for i, pid in enumerate(ids)}
    for pid, nb in lists.items():
        assert pid not in {n for n, _ in nb}
        dists = [d for _, d in nb]
        assert dists == sorted(dists)
        want = [1.0 - float(x[index[pid]] @ x[index[n]]) for n, _ in nb]
        assert np.allclose(dists, want, atol=2e-6)  # re-scored: exact float32 distances


def test_the_cells_compare_a_small_share_of_the_rows() -> None:
    x = clustered(6000, 48, 120, seed=2)
    found = allpairs.search(x, np.arange(len(x)), K, 0.95)
    assert found is not None
    assert found.plan.cells > 1 and found.plan.scanned < 0.2
    assert allpairs.recall(found.idx, exact(x, K), K) >= 0.95


def test_an_approximate_update_searches_only_the_new_rows(client: Any) -> None:
    x = clustered(6000, 48, 120, seed=3)
    ids = [f"i{i:05d}" for i in range(len(x))]
    insert(client, ids[:4800], x[:4800])
    first = neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, method="approximate")
    before = stored(client)
    insert(client, ids[4800:], x[4800:])
    update = neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, method="approximate")
    assert first.full and not update.full
    assert update.method == "approximate" and update.searched == 1200
    after = stored(client)
    assert recall(after, ids, exact(x, K)) >= 0.95
    new = set(ids[4800:])
    # old rows either keep their list or take in new rows that are nearer
    for pid in ids[:4800]:
        if after[pid] != before[pid]:
            assert {n for n, _ in after[pid]} - {n for n, _ in before[pid]} <= new
    assert update.merged > 0 and update.kept > 0


def test_the_method_switch(client: Any) -> None:
    x = clustered(3000, 48, 60, seed=4)
    ids = [f"i{i:05d}" for i in range(len(x))]
    insert(client, ids, x)
    truth = exact(x, K)
    for method in ("exact", "auto"):  # auto: exact below AUTO_MIN_ROWS
        stats = neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, full_refresh=True, method=method)
        assert stats.method == "exact"
        assert recall(stored(client), ids, truth) == 1.0
    stats = neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, full_refresh=True, method="approximate")
    assert stats.method == "approximate"
    with pytest.raises(neighbours.NeighboursError, match="method must be one of"):
        neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, method="fast")
    with pytest.raises(neighbours.NeighboursError, match="recall must be"):
        neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, method="approximate", recall=1.5)


def test_rows_without_cells_fall_back_to_the_exact_search(client: Any) -> None:
    # Isotropic noise: every row about as near to any other, no cell holds a row's
    # neighbours, and the sample shows it: the exact search runs instead.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"i{i:05d}" for i in range(len(x))]
    insert(client, ids, x)
    assert allpairs.search(x, np.arange(len(x)), K, 0.95) is None
    stats = neighbours.refresh(client, SOURCE, TARGET, K, COLUMNS, method="approximate")
    assert stats.method == "exact" and stats.sample_recall is None
    assert recall(stored(client), ids, exact(x, K)) == 1.0
