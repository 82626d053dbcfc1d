"""The k nearest neighbours of every row, kept up to date incrementally.

The SQL engine answers one vector query at a time from its HNSW index
(milliseconds each); the neighbours of *every* row are an all-pairs problem,
which a blocked matrix product solves exactly and far faster: 25k rows are a
few seconds of float32 GEMM.  Distances are cosine distances, 1 - cos, as the
engine's ``cosineDistance`` gives them.

The rows are read from the model's SQL by the column names of
:class:`Columns`; the table written holds, per row and neighbour, the row's
id, the neighbour's id, rank, dist, the hash of the row's vector and when the
list was computed.

An update recomputes only what changed.  Each stored row carries a hash of the
row's vector, so the update can tell

* new rows (id not stored, or vector changed): searched against all rows;
* rows whose list holds a neighbour that is gone or changed: searched again;
* all other rows: kept, except that a new row nearer than their current
  k-th neighbour is merged into their list (found from the same products).

The result goes to a fresh table that is exchanged with the old one, so an
interrupted update leaves the previous neighbours in place.  This module
imports no dbt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from clickhouse_connect.driver.binding import quote_identifier
from dbt.adapters.chdb import allpairs
from numpy.typing import NDArray

COMMENT_PREFIX = "nearest_neighbours k="
# Floats per block of the similarity matrix (rows x rows): 64 Mi floats = 256 MiB.
BLOCK_FLOATS = 1 << 26


class NeighboursError(ValueError):
    """The input vectors cannot be searched (bad shape, zero vectors, duplicate ids)."""


@dataclass(frozen=True)
class Columns:
    """Column names: ``id`` and ``vector`` of the rows searched; ``id``, ``neighbour``,
    rank, dist, ``hash`` and computed_at of the table written."""

    id: str = "id"
    vector: str = "embedding"
    neighbour: str = "neighbour_id"

    @property
    def hash(self) -> str:
        return f"{self.vector}_hash"

    def table(self) -> tuple[tuple[str, str], ...]:
        """(name, ClickHouse type) of the written table's columns."""
        return (
            (self.id, "String"),
            (self.neighbour, "String"),
            ("rank", "UInt32"),
            ("dist", "Float32"),
            (self.hash, "UInt64"),
            ("computed_at", "DateTime64(3)"),
        )


@dataclass(frozen=True)
class Target:
    """The table kept up to date: its database and name, and the quoted names of it and
    of the fresh table that replaces it (as dbt renders its relations)."""

    database: str
    name: str
    quoted: str
    staging: str


@dataclass
class Vectors:
    ids: list[str]
    matrix: NDArray[np.float32]  # (n, dim), rows scaled to unit length
    hashes: NDArray[np.uint64]


@dataclass
class Lists:
    """Neighbour lists of some rows: row i of each array belongs to items[i]."""

    items: NDArray[np.int64]  # indexes into Vectors.ids
    neighbours: NDArray[np.int64]  # (m, k) indexes into Vectors.ids, -1 past the end
    dists: NDArray[np.float32]  # (m, k), +inf past the end


@dataclass
class UpdateStats:
    rows: int = 0
    searched: int = 0  # rows searched against all rows (new, changed or stale)
    merged: int = 0  # kept rows whose list took in a new row
    kept: int = 0  # rows whose stored list stayed as it was
    seconds: float = 0.0
    full: bool = False
    method: str = "exact"  # the search that ran: exact, or approximate (k-means cells)
    cells: int = 0  # approximate: k-means cells, and cells compared with each query's group
    per_group: int = 0
    sample_recall: float | None = None  # approximate: recall@k on a sample, against exact

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "searched": self.searched,
            "merged": self.merged,
            "kept": self.kept,
            "seconds": round(self.seconds, 3),
            "full": self.full,
            "method": self.method,
            "cells": self.cells,
            "per_group": self.per_group,
            "sample_recall": self.sample_recall,
        }


def vectors_from_arrow(table: pa.Table, columns: Columns) -> Vectors:
    """Ids, unit vectors and vector hashes from the id, vector and hash columns of ``table``."""
    ids = table.column(columns.id).to_pylist()
    if len(set(ids)) != len(ids):
        raise NeighboursError(f"{columns.id} values are not unique")
    embeds = table.column(columns.vector).combine_chunks()
    n = len(ids)
    if n == 0:
        return Vectors([], np.zeros((0, 0), np.float32), np.zeros(0, np.uint64))
    lengths = embeds.value_lengths().to_numpy(zero_copy_only=False)
    dim = int(lengths[0])
    if dim == 0 or (lengths != dim).any():
        raise NeighboursError("embeddings differ in length or are empty")
    flat = embeds.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    matrix = flat.reshape(n, dim).copy()
    norms = np.linalg.norm(matrix, axis=1)
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        first = ids[int(np.flatnonzero(bad)[0])]
        raise NeighboursError(f"{int(bad.sum())} vectors are zero or not finite ({columns.id} {first!r})")
    matrix /= norms[:, None]
    hashes = table.column(columns.hash).to_numpy().astype(np.uint64)
    return Vectors(ids, matrix, hashes)


def _block_rows(n: int) -> int:
    return max(16, min(4096, BLOCK_FLOATS // max(n, 1)))


def search(
    vectors: Vectors, queries: NDArray[np.int64], k: int, thresholds: NDArray[np.float32] | None = None
) -> tuple[Lists, list[Hits]]:
    """Exact k nearest neighbours of the query rows, themselves excluded (float32).

    With ``thresholds`` (one per row), also returns every (query, row, dist)
    whose dist is below that row's threshold: the queries that would enter
    the row's list.
    """
    import torch

    x = vectors.matrix
    n = len(x)
    kk = min(k, max(n - 1, 0))
    out_nb = np.full((len(queries), k), -1, np.int64)
    out_d = np.full((len(queries), k), np.inf, np.float32)
    hits = []
    step = _block_rows(n)
    for start in range(0, len(queries), step):
        rows = queries[start : start + step]
        dist = 1.0 - x[rows] @ x.T  # (b, n)
        np.clip(dist, 0.0, 2.0, out=dist)
        dist[np.arange(len(rows)), rows] = np.inf  # a row is not its own neighbour
        if thresholds is not None:
            qi, pi = np.nonzero(dist < thresholds[None, :])
            hits.append((rows[qi], pi.astype(np.int64), dist[qi, pi]))
        if kk == 0:
            continue
        # torch's topk selects 10x faster than np.argpartition over these rows (docs/benchmarks.md)
        part_t = torch.from_numpy(dist).topk(kk, dim=1, largest=False, sorted=False).indices
        part = part_t.numpy()
        pd = np.take_along_axis(dist, part, axis=1)
        # nearest first; equal distances in id order, as SQL breaks ties with `order by dist, id`
        order = _order_rows(pd, part, vectors.ids)
        out_nb[start : start + len(rows), :kk] = np.take_along_axis(part, order, axis=1)
        out_d[start : start + len(rows), :kk] = np.take_along_axis(pd, order, axis=1)
    return Lists(queries, out_nb, out_d), hits


def search_approximate(
    vectors: Vectors,
    queries: NDArray[np.int64],
    k: int,
    recall: float,
    thresholds: NDArray[np.float32] | None = None,
) -> tuple[Lists, list[Hits], allpairs.Plan] | None:
    """Like :func:`search`, from k-means cells (dbt.adapters.chdb.allpairs) at the cheapest
    setting whose recall@k on a sample of the queries can reach ``recall``; None where
    none can, and the exact search is due.  The distances are exact float32 ones."""
    found = allpairs.search(vectors.matrix, queries, k, recall, thresholds)
    if found is None:
        return None
    n = len(vectors.ids)
    kk = min(k, max(n - 1, 0))
    out_nb = np.full((len(queries), k), -1, np.int64)
    out_d = np.full((len(queries), k), np.inf, np.float32)
    nb = found.idx[:, :kk]
    d = np.clip(1.0 - found.sims[:, :kk], 0.0, 2.0).astype(np.float32)
    d[nb < 0] = np.inf
    order = _order_rows(d, nb, vectors.ids)
    out_nb[:, :kk] = np.take_along_axis(nb, order, axis=1)
    out_d[:, :kk] = np.take_along_axis(d, order, axis=1)
    return Lists(queries, out_nb, out_d), found.hits, found.plan


def _order_rows(dists: NDArray[np.float32], idx: NDArray[np.int64], ids: list[str]) -> NDArray[np.int64]:
    order = np.argsort(dists, axis=1, kind="stable")
    # Ties are rare with float distances; resolve them by id where they occur.
    sd = np.take_along_axis(dists, order, axis=1)
    tied_rows = np.flatnonzero((np.diff(sd, axis=1) == 0).any(axis=1))
    for r in tied_rows:
        keys = sorted(range(idx.shape[1]), key=lambda j: (float(dists[r, j]), ids[int(idx[r, j])]))
        order[r] = keys
    return order


Hits = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]


def merge(lists: Lists, extra: Hits, k: int, ids: list[str]) -> NDArray[np.bool_]:
    """Merge candidate (neighbour, row, dist) triples into the lists in place; rows changed."""
    cand_nb, cand_item, cand_d = extra
    pos = {int(p): i for i, p in enumerate(lists.items)}
    changed = np.zeros(len(lists.items), bool)
    by_row: dict[int, list[tuple[float, str, int]]] = {}
    for nb, item, d in zip(cand_nb.tolist(), cand_item.tolist(), cand_d.tolist(), strict=True):
        row = pos.get(item)
        if row is not None:
            by_row.setdefault(row, []).append((d, ids[nb], nb))
    for row, cands in by_row.items():
        current = [
            (float(d), ids[int(nb)], int(nb))
            for nb, d in zip(lists.neighbours[row], lists.dists[row], strict=True)
            if nb >= 0
        ]
        present = {nb for _, _, nb in current}
        best = sorted(current + [c for c in cands if c[2] not in present])[:k]
        if best != current[:k]:
            changed[row] = True
            lists.neighbours[row] = -1
            lists.dists[row] = np.inf
            for j, (d, _, nb) in enumerate(best):
                lists.neighbours[row, j] = nb
                lists.dists[row, j] = d
    return changed


@dataclass
class Stored:
    lists: Lists
    computed_at: NDArray[np.datetime64]  # one per row of lists


def _stored(client: Any, target: Target, columns: Columns, vectors: Vectors, k: int) -> Stored | None:
    """The stored lists of rows whose vector is unchanged, or None when a full run is due."""
    rows = client.query(
        "select comment from system.tables where database = {db:String} and name = {name:String}",
        parameters={"db": target.database, "name": target.name},
    ).result_rows
    if not rows or rows[0][0] != f"{COMMENT_PREFIX}{k}":
        return None
    q = quote_identifier
    old = client.query_arrow(
        f"select {q(columns.id)} as id, {q(columns.hash)} as hash, {q(columns.neighbour)} as neighbour, dist,"
        f" computed_at from {target.quoted} order by id, rank"
    )
    index = {pid: i for i, pid in enumerate(vectors.ids)}
    item = np.array([index.get(p, -1) for p in old.column("id").to_pylist()], np.int64)
    nb = np.array([index.get(p, -1) for p in old.column("neighbour").to_pylist()], np.int64)
    stored_hash = old.column("hash").to_numpy().astype(np.uint64)
    dist = old.column("dist").to_numpy().astype(np.float32)
    when = old.column("computed_at").to_numpy()
    # A row counts as stored when it still exists with the vector it had.
    alive = item >= 0
    alive[alive] = vectors.hashes[item[alive]] == stored_hash[alive]
    kept_items = np.unique(item[alive])
    lists = Lists(
        kept_items, np.full((len(kept_items), k), -1, np.int64), np.full((len(kept_items), k), np.inf, np.float32)
    )
    computed = np.empty(len(kept_items), dtype=when.dtype)
    row_of = np.searchsorted(kept_items, item[alive])
    slot = np.zeros(len(kept_items), np.int64)
    for r, n_idx, d, w in zip(row_of.tolist(), nb[alive].tolist(), dist[alive].tolist(), when[alive], strict=True):
        j = slot[r]
        if j < k:
            lists.neighbours[r, j] = n_idx
            lists.dists[r, j] = d
            slot[r] = j + 1
        computed[r] = w
    return Stored(lists, computed)


def _plan(vectors: Vectors, stored: Stored, k: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Rows to search against all rows, and a mask over stored rows that stay as stored."""
    n = len(vectors.ids)
    kept = np.zeros(n, bool)
    kept[stored.lists.items] = True
    lists = stored.lists
    # -1 marks a neighbour that no longer exists; a changed one is not kept either.
    valid = lists.neighbours >= 0
    stale_nb = np.zeros_like(valid)
    stale_nb[valid] = ~kept[lists.neighbours[valid]]
    stale_nb |= ~valid & np.isfinite(lists.dists)
    # A list shorter than it could be (fewer rows before) is topped up by the merge.
    stay = np.logical_not(stale_nb.any(axis=1))
    searched = np.concatenate([np.flatnonzero(~kept), lists.items[~stay]])
    return np.sort(searched), stay


def _write(
    client: Any,
    target: Target,
    columns: Columns,
    k: int,
    ids: list[str],
    hashes: NDArray[np.uint64],
    parts: list[tuple[Lists, NDArray[np.datetime64]]],
) -> None:
    item, nb, rank, dist, hsh, when = [], [], [], [], [], []
    for lists, computed in parts:
        valid = lists.neighbours >= 0
        r, c = np.nonzero(valid)
        p_idx = lists.items[r]
        item.append(p_idx)
        nb.append(lists.neighbours[r, c])
        rank.append((c + 1).astype(np.uint32))
        dist.append(lists.dists[r, c])
        hsh.append(hashes[p_idx])
        when.append(computed[r].astype("datetime64[ms]"))
    id_array = np.array(ids, dtype=object)
    table = pa.table(
        {
            columns.id: pa.array(id_array[np.concatenate(item)] if item else [], pa.string()),
            columns.neighbour: pa.array(id_array[np.concatenate(nb)] if nb else [], pa.string()),
            "rank": pa.array(np.concatenate(rank) if rank else [], pa.uint32()),
            "dist": pa.array(np.concatenate(dist) if dist else [], pa.float32()),
            columns.hash: pa.array(np.concatenate(hsh) if hsh else [], pa.uint64()),
            "computed_at": pa.array(np.concatenate(when) if when else [], pa.timestamp("ms")),
        }
    )
    staging = target.staging
    ddl = ", ".join(f"{quote_identifier(name)} {ch_type}" for name, ch_type in columns.table())
    client.command(f"drop table if exists {staging}")
    client.command(
        f"create table {staging} ({ddl}) engine = MergeTree order by ({quote_identifier(columns.id)}, rank)"
        f" comment '{COMMENT_PREFIX}{int(k)}'"
    )
    try:
        if table.num_rows:
            client.insert_arrow(staging, table)
        if client.command(f"exists table {target.quoted}") == 1:
            client.command(f"exchange tables {staging} and {target.quoted}")
            client.command(f"drop table {staging}")
        else:
            client.command(f"rename table {staging} to {target.quoted}")
    except BaseException:
        client.command(f"drop table if exists {staging}")
        raise


METHODS = ("exact", "approximate", "auto")
# auto: below this many rows (or queries) the exact search takes seconds; above, the
# approximate one, where its sample keeps the recall (docs/benchmarks.md, the approximate all-pairs section).
AUTO_MIN_ROWS = 50_000


def _searcher(
    vectors: Vectors, method: str, recall: float, stats: UpdateStats
) -> Callable[[NDArray[np.int64], int, NDArray[np.float32] | None], tuple[Lists, list[Hits]]]:
    def run(queries: NDArray[np.int64], k: int, thresholds: NDArray[np.float32] | None) -> tuple[Lists, list[Hits]]:
        big = len(vectors.ids) >= AUTO_MIN_ROWS and len(queries) >= allpairs.SAMPLE
        if method == "approximate" or (method == "auto" and big):
            found = search_approximate(vectors, queries, k, recall, thresholds) if len(queries) else None
            if found is not None:
                lists, hits, plan = found
                stats.method, stats.cells, stats.per_group = "approximate", plan.cells, plan.per_group
                stats.sample_recall = round(plan.recall, 4)
                return lists, hits
        return search(vectors, queries, k, thresholds)

    return run


def refresh(
    client: Any,
    source_sql: str,
    target: Target,
    k: int,
    columns: Columns,
    full_refresh: bool = False,
    max_rows: int | None = None,
    method: str = "exact",
    recall: float = 0.95,
) -> UpdateStats:
    """Bring ``target`` up to date with the rows ``source_sql`` selects.

    ``method``: ``exact`` compares every searched row with every row;
    ``approximate`` only with the rows of its nearest k-means cells, at the
    cheapest setting whose recall@k on a sample reaches ``recall`` (the exact
    search where none does); ``auto`` is exact below AUTO_MIN_ROWS rows and
    approximate above.  The search grows with the square of the rows (the
    approximate one by a smaller factor): above ``max_rows`` it is refused
    before any work rather than left running for hours.
    """
    if k < 1:
        raise NeighboursError(f"k must be at least 1, got {k}")
    if method not in METHODS:
        raise NeighboursError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not 0.0 < recall <= 1.0:
        raise NeighboursError(f"recall must be in (0, 1], got {recall}")
    if max_rows is not None:
        count = int(client.command(f"select count() from ({source_sql}) as source"))
        if count > max_rows:
            raise NeighboursError(
                f"{count} rows exceed max_rows ({max_rows}): the exact search of every row's neighbours"
                " grows with the square of the rows; raise the limit to run it anyway, or leave the model out"
            )
    started = time.perf_counter()
    q = quote_identifier
    table = client.query_arrow(
        f"select {q(columns.id)}, {q(columns.vector)}, cityHash64({q(columns.vector)}) as {q(columns.hash)}"
        f" from ({source_sql}) as source"
    )
    vectors = vectors_from_arrow(table, columns)
    n = len(vectors.ids)
    now = np.datetime64(int(time.time() * 1000), "ms")
    stats = UpdateStats(rows=n)
    find = _searcher(vectors, method, recall, stats)
    stored = None if full_refresh or n == 0 else _stored(client, target, columns, vectors, k)
    if stored is None:
        stats.full = True
        queries = np.arange(n, dtype=np.int64)
        lists, _ = find(queries, k, None)
        _write(client, target, columns, k, vectors.ids, vectors.hashes, [(lists, np.full(n, now))])
        stats.searched = n
    else:
        queries, stay = _plan(vectors, stored, k)
        kept = Lists(stored.lists.items[stay], stored.lists.neighbours[stay], stored.lists.dists[stay])
        computed = stored.computed_at[stay]
        thresholds = np.full(n, -np.inf, np.float32)
        thresholds[kept.items] = kept.dists[:, k - 1]  # +inf where a list is not full
        fresh, hits = find(queries, k, thresholds if len(kept.items) else None)
        changed = np.zeros(len(kept.items), bool)
        for block in hits:
            changed |= merge(kept, block, k, vectors.ids)
        computed = computed.astype("datetime64[ms]")
        computed[changed] = now
        _write(
            client,
            target,
            columns,
            k,
            vectors.ids,
            vectors.hashes,
            [(kept, computed), (fresh, np.full(len(queries), now))],
        )
        stats.searched = len(queries)
        stats.merged = int(changed.sum())
        stats.kept = len(kept.items) - stats.merged
    stats.seconds = time.perf_counter() - started
    return stats
