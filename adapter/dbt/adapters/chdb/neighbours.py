"""The k nearest neighbours of every row, kept up to date incrementally.

The SQL engine answers one vector query at a time from its HNSW index
(milliseconds each); the neighbours of *every* photo are an all-pairs problem,
which a blocked matrix product solves exactly and far faster: 25k photos are a
few seconds of float32 GEMM.  Distances are cosine distances, 1 - cos, as the
engine's ``cosineDistance`` gives them.

An update recomputes only what changed.  Each stored row carries a hash of the
photo's embedding, so the update can tell

* new photos (id not stored, or embedding changed): searched against all photos;
* photos whose list holds a neighbour that is gone or changed: searched again;
* all other photos: kept, except that a new photo nearer than their current
  k-th neighbour is merged into their list (found from the same products).

The result goes to a fresh table that is exchanged with the old one, so an
interrupted update leaves the previous neighbours in place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

COMMENT_PREFIX = "bildsuche nearest_neighbours k="
# Floats per block of the similarity matrix (rows x photos): 64 Mi floats = 256 MiB.
BLOCK_FLOATS = 1 << 26

COLUMNS = (
    ("photo_id", "String"),
    ("neighbour_id", "String"),
    ("rank", "UInt32"),
    ("dist", "Float32"),
    ("photo_embed_hash", "UInt64"),
    ("computed_at", "DateTime64(3)"),
)


class NeighboursError(ValueError):
    """The input vectors cannot be searched (bad shape, zero vectors, duplicate ids)."""


@dataclass
class Vectors:
    ids: list[str]
    matrix: NDArray[np.float32]  # (n, dim), rows scaled to unit length
    hashes: NDArray[np.uint64]


@dataclass
class Lists:
    """Neighbour lists of some photos: row i of each array belongs to photos[i]."""

    photos: NDArray[np.int64]  # indexes into Vectors.ids
    neighbours: NDArray[np.int64]  # (m, k) indexes into Vectors.ids, -1 past the end
    dists: NDArray[np.float32]  # (m, k), +inf past the end


@dataclass
class UpdateStats:
    photos: int = 0
    searched: int = 0  # photos searched against all photos (new, changed or stale)
    merged: int = 0  # kept photos whose list took in a new photo
    kept: int = 0  # photos whose stored list stayed as it was
    seconds: float = 0.0
    full: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "searched": self.searched,
            "merged": self.merged,
            "kept": self.kept,
            "seconds": round(self.seconds, 3),
            "full": self.full,
        }


def vectors_from_arrow(table: pa.Table) -> Vectors:
    """Photo ids, unit vectors and embedding hashes from (photo_id, photo_embed, photo_embed_hash)."""
    ids = table.column("photo_id").to_pylist()
    if len(set(ids)) != len(ids):
        raise NeighboursError("photo ids are not unique")
    embeds = table.column("photo_embed").combine_chunks()
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
        raise NeighboursError(f"{int(bad.sum())} embeddings are zero or not finite (photo {first!r})")
    matrix /= norms[:, None]
    hashes = table.column("photo_embed_hash").to_numpy().astype(np.uint64)
    return Vectors(ids, matrix, hashes)


def _block_rows(n: int) -> int:
    return max(16, min(4096, BLOCK_FLOATS // max(n, 1)))


def search(
    vectors: Vectors, queries: NDArray[np.int64], k: int, thresholds: NDArray[np.float32] | None = None
) -> tuple[Lists, list[Hits]]:
    """Exact k nearest neighbours of the query photos, themselves excluded.

    With ``thresholds`` (one per photo), also returns every (query, photo, dist)
    whose dist is below that photo's threshold: the queries that would enter
    the photo's list.
    """
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
        dist[np.arange(len(rows)), rows] = np.inf  # a photo is not its own neighbour
        if thresholds is not None:
            qi, pi = np.nonzero(dist < thresholds[None, :])
            hits.append((rows[qi], pi.astype(np.int64), dist[qi, pi]))
        if kk == 0:
            continue
        part = np.argpartition(dist, kk - 1, axis=1)[:, :kk]
        pd = np.take_along_axis(dist, part, axis=1)
        # nearest first; equal distances in photo id order, as the SQL marts break ties
        order = _order_rows(pd, part, vectors.ids)
        out_nb[start : start + len(rows), :kk] = np.take_along_axis(part, order, axis=1)
        out_d[start : start + len(rows), :kk] = np.take_along_axis(pd, order, axis=1)
    return Lists(queries, out_nb, out_d), hits


def _order_rows(dists: NDArray[np.float32], idx: NDArray[np.int64], ids: list[str]) -> NDArray[np.int64]:
    order = np.argsort(dists, axis=1, kind="stable")
    # Ties are rare with float distances; resolve them by photo id where they occur.
    sd = np.take_along_axis(dists, order, axis=1)
    tied_rows = np.flatnonzero((np.diff(sd, axis=1) == 0).any(axis=1))
    for r in tied_rows:
        keys = sorted(range(idx.shape[1]), key=lambda j: (float(dists[r, j]), ids[int(idx[r, j])]))
        order[r] = keys
    return order


Hits = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]


def merge(lists: Lists, extra: Hits, k: int, ids: list[str]) -> NDArray[np.bool_]:
    """Merge candidate (neighbour, photo, dist) triples into the lists in place; rows changed."""
    cand_nb, cand_photo, cand_d = extra
    pos = {int(p): i for i, p in enumerate(lists.photos)}
    changed = np.zeros(len(lists.photos), bool)
    by_row: dict[int, list[tuple[float, str, int]]] = {}
    for nb, photo, d in zip(cand_nb.tolist(), cand_photo.tolist(), cand_d.tolist(), strict=True):
        row = pos.get(photo)
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


def _quote(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _stored(client: Any, database: str, name: str, vectors: Vectors, k: int) -> Stored | None:
    """The stored lists of photos whose embedding is unchanged, or None when a full run is due."""
    target = f"{_quote(database)}.{_quote(name)}"
    rows = client.query(
        "select comment from system.tables where database = {db:String} and name = {name:String}",
        parameters={"db": database, "name": name},
    ).result_rows
    if not rows or rows[0][0] != f"{COMMENT_PREFIX}{k}":
        return None
    old = client.query_arrow(
        f"select photo_id, photo_embed_hash, neighbour_id, dist, computed_at from {target} order by photo_id, rank"
    )
    index = {pid: i for i, pid in enumerate(vectors.ids)}
    photo = np.array([index.get(p, -1) for p in old.column("photo_id").to_pylist()], np.int64)
    nb = np.array([index.get(p, -1) for p in old.column("neighbour_id").to_pylist()], np.int64)
    stored_hash = old.column("photo_embed_hash").to_numpy().astype(np.uint64)
    dist = old.column("dist").to_numpy().astype(np.float32)
    when = old.column("computed_at").to_numpy()
    # A photo counts as stored when it still exists with the embedding it had.
    alive = photo >= 0
    alive[alive] = vectors.hashes[photo[alive]] == stored_hash[alive]
    kept_photos = np.unique(photo[alive])
    lists = Lists(
        kept_photos, np.full((len(kept_photos), k), -1, np.int64), np.full((len(kept_photos), k), np.inf, np.float32)
    )
    computed = np.empty(len(kept_photos), dtype=when.dtype)
    row_of = np.searchsorted(kept_photos, photo[alive])
    slot = np.zeros(len(kept_photos), np.int64)
    for r, n_idx, d, w in zip(row_of.tolist(), nb[alive].tolist(), dist[alive].tolist(), when[alive], strict=True):
        j = slot[r]
        if j < k:
            lists.neighbours[r, j] = n_idx
            lists.dists[r, j] = d
            slot[r] = j + 1
        computed[r] = w
    return Stored(lists, computed)


def _plan(vectors: Vectors, stored: Stored, k: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Photos to search against all photos, and a mask over stored rows that stay as stored."""
    n = len(vectors.ids)
    kept = np.zeros(n, bool)
    kept[stored.lists.photos] = True
    lists = stored.lists
    # -1 marks a neighbour that no longer exists; a changed one is not kept either.
    valid = lists.neighbours >= 0
    stale_nb = np.zeros_like(valid)
    stale_nb[valid] = ~kept[lists.neighbours[valid]]
    stale_nb |= ~valid & np.isfinite(lists.dists)
    # A list shorter than it could be (fewer photos before) is topped up by the merge.
    stay = np.logical_not(stale_nb.any(axis=1))
    searched = np.concatenate([np.flatnonzero(~kept), lists.photos[~stay]])
    return np.sort(searched), stay


def _write(
    client: Any,
    database: str,
    name: str,
    k: int,
    ids: list[str],
    hashes: NDArray[np.uint64],
    parts: list[tuple[Lists, NDArray[np.datetime64]]],
) -> None:
    photo, nb, rank, dist, hsh, when = [], [], [], [], [], []
    for lists, computed in parts:
        valid = lists.neighbours >= 0
        r, c = np.nonzero(valid)
        p_idx = lists.photos[r]
        photo.append(p_idx)
        nb.append(lists.neighbours[r, c])
        rank.append((c + 1).astype(np.uint32))
        dist.append(lists.dists[r, c])
        hsh.append(hashes[p_idx])
        when.append(computed[r].astype("datetime64[ms]"))
    id_array = np.array(ids, dtype=object)
    table = pa.table(
        {
            "photo_id": pa.array(id_array[np.concatenate(photo)] if photo else [], pa.string()),
            "neighbour_id": pa.array(id_array[np.concatenate(nb)] if nb else [], pa.string()),
            "rank": pa.array(np.concatenate(rank) if rank else [], pa.uint32()),
            "dist": pa.array(np.concatenate(dist) if dist else [], pa.float32()),
            "photo_embed_hash": pa.array(np.concatenate(hsh) if hsh else [], pa.uint64()),
            "computed_at": pa.array(np.concatenate(when) if when else [], pa.timestamp("ms")),
        }
    )
    target = f"{_quote(database)}.{_quote(name)}"
    staging = f"{_quote(database)}.{_quote(name + '__neighbours_new')}"
    columns = ", ".join(f"`{name}` {ch_type}" for name, ch_type in COLUMNS)
    client.command(f"drop table if exists {staging}")
    client.command(
        f"create table {staging} ({columns}) engine = MergeTree order by (photo_id, rank)"
        f" comment '{COMMENT_PREFIX}{int(k)}'"
    )
    try:
        if table.num_rows:
            client.insert_arrow(staging, table)
        if client.command(f"exists table {target}") == 1:
            client.command(f"exchange tables {staging} and {target}")
            client.command(f"drop table {staging}")
        else:
            client.command(f"rename table {staging} to {target}")
    except BaseException:
        client.command(f"drop table if exists {staging}")
        raise


def refresh(
    client: Any,
    source_sql: str,
    database: str,
    name: str,
    k: int,
    full_refresh: bool = False,
    max_photos: int | None = None,
) -> UpdateStats:
    """Bring table `database`.`name` up to date with the photos `source_sql` selects.

    The exact search grows with the square of the photos: above `max_photos`
    it is refused before any work rather than left running for hours.
    """
    if k < 1:
        raise NeighboursError(f"k must be at least 1, got {k}")
    if max_photos is not None:
        count = int(client.command(f"select count() from ({source_sql}) as source"))
        if count > max_photos:
            raise NeighboursError(
                f"{count} photos exceed neighbours_max_photos ({max_photos}): the exact search of every"
                " photo's neighbours grows with the square of the photos; raise the var to run it anyway"
                " or leave the model out (dbt build --exclude photo_neighbours+)"
            )
    started = time.perf_counter()
    table = client.query_arrow(
        f"select photo_id, photo_embed, cityHash64(photo_embed) as photo_embed_hash from ({source_sql}) as source"
    )
    vectors = vectors_from_arrow(table)
    n = len(vectors.ids)
    now = np.datetime64(int(time.time() * 1000), "ms")
    stats = UpdateStats(photos=n)
    stored = None if full_refresh or n == 0 else _stored(client, database, name, vectors, k)
    if stored is None:
        stats.full = True
        queries = np.arange(n, dtype=np.int64)
        lists, _ = search(vectors, queries, k)
        _write(client, database, name, k, vectors.ids, vectors.hashes, [(lists, np.full(n, now))])
        stats.searched = n
    else:
        queries, stay = _plan(vectors, stored, k)
        kept = Lists(stored.lists.photos[stay], stored.lists.neighbours[stay], stored.lists.dists[stay])
        computed = stored.computed_at[stay]
        thresholds = np.full(n, -np.inf, np.float32)
        thresholds[kept.photos] = kept.dists[:, k - 1]  # +inf where a list is not full
        fresh, hits = search(vectors, queries, k, thresholds=thresholds if len(kept.photos) else None)
        changed = np.zeros(len(kept.photos), bool)
        for block in hits:
            changed |= merge(kept, block, k, vectors.ids)
        computed = computed.astype("datetime64[ms]")
        computed[changed] = now
        _write(
            client,
            database,
            name,
            k,
            vectors.ids,
            vectors.hashes,
            [(kept, computed), (fresh, np.full(len(queries), now))],
        )
        stats.searched = len(queries)
        stats.merged = int(changed.sum())
        stats.kept = len(kept.photos) - stats.merged
    stats.seconds = time.perf_counter() - started
    return stats
