"""Approximate all-pairs k nearest neighbours: k-means cells, bf16 products, float32 re-scoring.

The exact search compares every row with every other (n² products).  Here the
rows are partitioned into cells by spherical k-means; the query rows are
grouped by their nearest cell, and each group is compared only with the cells
its rows name most often among their VOTES nearest (``per_group`` of them), in
one matrix product per group.  The products run in bfloat16 (three times the
float32 rate on this project's CPUs, docs/benchmarks.md), each query keeps
its best ``k + MARGIN`` candidates, and those are re-scored in float32: the
distances written are exact, only the candidate set is approximate.

bfloat16 keeps 8 bits of mantissa: a cosine near 0.85 is rounded to steps of
0.004, coarser than the gap between the 10th and the 50th neighbour on dense
data.  The products are therefore taken of ``[q, -shift]`` and ``[x, 1]``,
which gives ``q.x - shift`` accumulated in float32 before rounding; with the
shift near the typical k-th similarity the rounding steps there are a
hundred times finer.

Whether the cells hold the true neighbours depends on the data, so
:func:`search` checks before committing to a setting: the exact neighbours of
a sample of the query rows say which share lies in the cells each setting
compares, the fewest cells that reach the target are taken, and where more
than MAX_SCANNED of the rows would be compared it answers None, so that the
caller keeps the exact search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

MARGIN = 10  # candidates kept per query beyond k, for the float32 re-scoring
BLOCK_ELEMENTS = 1 << 25  # bf16 products per block (64 MiB)
KMEANS_ITERATIONS = 10
KMEANS_SAMPLE_PER_CELL = 48
PER_GROUP = (4, 8, 16, 32, 64, 128, 256, 512)  # cells compared with a group, tried in turn
VOTES = 16  # a row names its nearest cells, up to this many, for its group
# Above this share of the rows scanned per query, the cells save too little over a full scan.
MAX_SCANNED = 0.4
SAMPLE = 1000
RESCORE_BLOCK = 256
SEED = 17


@dataclass(frozen=True)
class Plan:
    """The setting a search ran with, and what its sample measured."""

    cells: int
    per_group: int  # cells compared with each group of queries
    recall: float  # measured on the sample, against exact search
    scanned: float  # mean share of the rows compared with each sampled query


def default_cells(n: int) -> int:
    return int(min(8192, max(1, round(2 * math.sqrt(n)))))


class Index:
    """The rows in bfloat16 (with the shift column), grouped by cell; the float32 rows
    for re-scoring; each row's cells nearest first."""

    def __init__(self, matrix: NDArray[np.float32], cells: int, shift: float) -> None:
        import torch

        self.torch = torch
        self.x = torch.from_numpy(matrix)  # float32, unit rows (shared with the caller)
        self.n, self.dim = matrix.shape
        self.shift = shift
        self.cells = max(1, min(cells, self.n))
        if self.cells == 1:
            self.nearest = torch.zeros((self.n, 1), dtype=torch.int32)
        else:
            self.nearest = _nearest_cells(self.x, _kmeans(self.x, self.cells), min(VOTES, self.cells))
        member = self.nearest[:, 0].long()
        self.order = torch.argsort(member, stable=True)  # rows sorted by cell
        self.position = torch.empty_like(self.order)  # where each row went
        self.position[self.order] = torch.arange(self.n)
        counts = torch.bincount(member, minlength=self.cells)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)]).tolist()
        self.sizes = counts.numpy()
        # [x, 1, 0...]: products with [q, -shift, 0...] give q.x - shift (see the module's doc);
        # the zeros pad to a multiple of 32 columns, which the bf16 kernels prefer.
        width = -(-(self.dim + 1) // 32) * 32
        self.rows = torch.zeros((self.n, width), dtype=torch.bfloat16)
        self.rows[:, : self.dim] = self.x[self.order]
        self.rows[:, self.dim] = 1.0

    def _query_rows(self, queries: Any) -> Any:
        out = self.torch.zeros((len(queries), self.rows.shape[1]), dtype=self.torch.bfloat16)
        out[:, : self.dim] = self.x[queries]
        out[:, self.dim] = -self.shift
        return out

    def groups(self, queries: Any, over: Any, per_group: int) -> list[tuple[Any, list[int]]]:
        """Queries grouped by their nearest cell, each group with the ``per_group`` cells
        that the rows of ``over`` sharing that nearest cell name most often among their
        VOTES nearest (so that a sample sees the cells a full run compares)."""
        torch = self.torch
        primary = self.nearest[queries, 0].long()
        over_primary = self.nearest[over, 0].long()
        by_cell = torch.argsort(primary, stable=True)
        cells, counts = torch.unique_consecutive(primary[by_cell], return_counts=True)
        over_sorted = torch.argsort(over_primary, stable=True)
        over_cells = over_primary[over_sorted]
        groups = []
        start = 0
        for cell, count in zip(cells.tolist(), counts.tolist(), strict=True):
            members = by_cell[start : start + count]
            start += count
            lo = int(torch.searchsorted(over_cells, cell))
            hi = int(torch.searchsorted(over_cells, cell, right=True))
            named = self.nearest[over[over_sorted[lo:hi]]].long().reshape(-1)
            votes = torch.bincount(named, minlength=self.cells)
            votes[cell] = votes.max() + 1  # the group's own cell first
            top = votes.topk(min(per_group, self.cells))
            groups.append((members, sorted(top.indices[top.values > 0].tolist())))  # rows in cell order
        return groups

    def scanned(self, groups: list[tuple[Any, list[int]]]) -> float:
        """Mean share of the rows compared with each query of ``groups``."""
        total = sum(len(m) * int(self.sizes[c].sum()) for m, c in groups)
        return total / (sum(len(m) for m, _ in groups) * self.n)

    def covered(self, groups: list[tuple[Any, list[int]]], queries: Any, truth: NDArray[np.int64]) -> float:
        """Share of the true neighbours (rows of ``truth``, one per query) that lie in the
        cells their query's group compares: the recall the search can reach."""
        member = self.nearest[:, 0].long().numpy()
        found = 0
        for members, cells in groups:
            cell_set = np.zeros(self.cells, bool)
            cell_set[cells] = True
            found += int(cell_set[member[truth[members.numpy()]]].sum())
        return found / truth.size

    def search(
        self,
        queries: NDArray[np.int64],
        k: int,
        per_group: int,
        thresholds: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], list[tuple[Any, Any, Any]]]:
        """Candidates of each query, best first (k + MARGIN of them, re-scored): row indexes
        and exact cosine similarities, -1 / -inf past the end; and with ``thresholds`` (a
        distance per row, -inf for none) the (query, row, dist) pairs nearer than the row's
        threshold among the rows compared.  ``per_group``: cells compared with each
        group of queries (:meth:`_groups`)."""
        torch = self.torch
        q_all = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.int64))
        keep = k + MARGIN
        cand_sim = torch.full((len(q_all), keep), -math.inf, dtype=torch.bfloat16)
        cand_idx = torch.full((len(q_all), keep), -1, dtype=torch.int64)
        bound = None
        if thresholds is not None:
            # sim - shift above this bound (less a margin for the rounding) may be a hit.
            bound = torch.from_numpy((1.0 - thresholds - self.shift - 0.02).astype(np.float32))[self.order]
        hits: list[tuple[Any, Any]] = []
        for members, cells in self.groups(q_all, q_all, per_group):
            ranges = [(self.offsets[c], self.offsets[c + 1]) for c in cells]
            spans = torch.cat([torch.arange(lo, hi) for lo, hi in ranges if hi > lo])
            rows = torch.index_select(self.rows, 0, spans)  # 5x faster than rows[spans] for bf16
            step = max(1, BLOCK_ELEMENTS // len(spans))
            for s in range(0, len(members), step):
                qp = members[s : s + step]
                sims = self._query_rows(q_all[qp]) @ rows.T
                # a row is not its own neighbour
                at = torch.searchsorted(spans, self.position[q_all[qp]])
                at = at.clamp(max=len(spans) - 1)
                own = (spans[at] == self.position[q_all[qp]]).nonzero(as_tuple=True)[0]
                sims[own, at[own]] = -math.inf
                if bound is not None:
                    qi, ri = (sims > bound[spans][None, :].to(torch.bfloat16)).nonzero(as_tuple=True)
                    if len(qi):
                        hits.append((q_all[qp[qi]], self.order[spans[ri]]))
                top = sims.topk(min(keep, len(spans)), dim=1)
                cand_sim[qp, : top.values.shape[1]] = top.values
                cand_idx[qp, : top.values.shape[1]] = self.order[spans[top.indices]]
        exact = self._rescore(q_all, cand_idx)
        ranked = exact.argsort(dim=1, descending=True, stable=True)
        idx, exact = torch.gather(cand_idx, 1, ranked), torch.gather(exact, 1, ranked)
        return idx.numpy(), exact.numpy(), self._exact_hits(hits, thresholds)

    def _rescore(self, q_all: Any, idx: Any) -> Any:
        """Float32 cosine similarities of each query with its candidates, in small blocks:
        a gathered block of a few MiB is reused by the allocator, a big one costs page faults."""
        x = self.x.numpy()
        q_np, idx_np = q_all.numpy(), idx.numpy()
        out = np.full(idx_np.shape, -np.inf, dtype=np.float32)
        for start in range(0, len(q_np), RESCORE_BLOCK):
            block = idx_np[start : start + RESCORE_BLOCK]
            sims = np.einsum("bkd,bd->bk", x[np.maximum(block, 0)], x[q_np[start : start + RESCORE_BLOCK]])
            out[start : start + RESCORE_BLOCK] = np.where(block >= 0, sims, -np.inf)
        return self.torch.from_numpy(out)

    def _exact_hits(
        self, hits: list[tuple[Any, Any]], thresholds: NDArray[np.float32] | None
    ) -> list[tuple[Any, Any, Any]]:
        if thresholds is None or not hits:
            return []
        q = self.torch.cat([h[0] for h in hits])
        r = self.torch.cat([h[1] for h in hits])
        dist = (1.0 - (self.x[q] * self.x[r]).sum(dim=1)).clamp(0.0, 2.0).numpy()
        q_np, r_np = q.numpy(), r.numpy()
        ok = dist < thresholds[r_np]
        return [(q_np[ok], r_np[ok], dist[ok].astype(np.float32))]


def _nearest_cells(x: Any, centres: Any, width: int) -> Any:
    """Each row's ``width`` nearest centres, nearest first (int32)."""
    import torch

    cb = centres.to(torch.bfloat16)
    out = torch.empty((len(x), width), dtype=torch.int32)
    step = max(1, BLOCK_ELEMENTS // len(centres))
    for start in range(0, len(x), step):
        block = x[start : start + step].to(torch.bfloat16)
        out[start : start + step] = (block @ cb.T).topk(width, dim=1).indices
    return out


def _kmeans(x: Any, cells: int) -> Any:
    """Spherical k-means on a sample of the rows: unit centres (cells, dim), float32."""
    import torch

    gen = torch.Generator().manual_seed(SEED)
    n = len(x)
    sample = x[torch.randperm(n, generator=gen)[: min(n, cells * KMEANS_SAMPLE_PER_CELL)]]
    sample_b = sample.to(torch.bfloat16)
    centres = sample[torch.randperm(len(sample), generator=gen)[:cells]].clone()
    step = max(1, BLOCK_ELEMENTS // cells)
    for _ in range(KMEANS_ITERATIONS):
        cb = centres.to(torch.bfloat16)
        assign = torch.cat([(sample_b[s : s + step] @ cb.T).argmax(dim=1) for s in range(0, len(sample), step)])
        sums = torch.zeros_like(centres).index_add_(0, assign, sample)
        empty = torch.bincount(assign, minlength=cells) == 0
        if empty.any():  # an empty cell starts again from a random row
            sums[empty] = sample[torch.randint(len(sample), (int(empty.sum()),), generator=gen)]
        centres = sums / sums.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return centres


def exact_top(matrix: NDArray[np.float32], queries: NDArray[np.int64], k: int) -> tuple[NDArray[np.int64], Any]:
    """Exact k nearest (by float32 products) of a few query rows: indexes, similarities."""
    import torch

    idx = np.empty((len(queries), k), np.int64)
    sims = np.empty((len(queries), k), np.float32)
    step = max(1, BLOCK_ELEMENTS // max(len(matrix), 1))  # a block of 128 MiB at most
    for start in range(0, len(queries), step):
        rows = queries[start : start + step]
        block = torch.from_numpy(matrix[rows] @ matrix.T)
        block[torch.arange(len(rows)), torch.from_numpy(rows)] = -math.inf
        top = block.topk(k, dim=1)
        idx[start : start + len(rows)] = top.indices.numpy()
        sims[start : start + len(rows)] = top.values.numpy()
    return idx, sims


def recall(got: NDArray[np.int64], truth: NDArray[np.int64], k: int) -> float:
    hits = sum(len(set(g[:k].tolist()) & set(t.tolist())) for g, t in zip(got, truth, strict=True))
    return hits / (len(truth) * k)


@dataclass
class Result:
    """What :func:`search` found: candidates best first (row indexes, -1 past the end, and
    exact cosine similarities), the threshold hits, and the plan with its measured recall."""

    idx: NDArray[np.int64]
    sims: NDArray[np.float32]
    hits: list[tuple[Any, Any, Any]]
    plan: Plan


def search(
    matrix: NDArray[np.float32],
    queries: NDArray[np.int64],
    k: int,
    target: float,
    thresholds: NDArray[np.float32] | None = None,
    cells: int | None = None,
) -> Result | None:
    """The k nearest rows of each query (itself excluded) by the cheapest setting whose
    recall on a sample of the queries can reach ``target``; None where comparing
    MAX_SCANNED of the rows would not, and the exact search is due.

    The sample's true neighbours (exact float32 search) say which share of them lies in
    the cells a setting compares: that bounds its recall, cheaply.  The recall
    reported is then measured on the sample's lists as found."""
    n = len(matrix)
    kk = min(k, n - 1)
    if kk < 1 or len(queries) == 0:
        return None
    rng = np.random.default_rng(SEED)
    picked = np.sort(rng.choice(len(queries), size=min(SAMPLE, len(queries)), replace=False))
    sample = queries[picked]
    truth, truth_sims = exact_top(matrix, sample, kk)
    index = Index(matrix, cells or default_cells(n), float(np.median(truth_sims[:, -1])))
    torch = index.torch
    q_t = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.int64))
    s_t = torch.from_numpy(sample)
    wanted = min(1.0, target + 0.01)  # the sample's own error
    for per_group in PER_GROUP:
        groups = index.groups(s_t, q_t, per_group)
        scanned = index.scanned(groups)
        if scanned > MAX_SCANNED:
            return None
        if index.covered(groups, s_t, truth) >= wanted or per_group >= index.cells:
            break
    else:
        return None
    idx, sims, hits = index.search(queries, kk, per_group, thresholds)
    measured = recall(idx[picked], truth, kk)
    return Result(idx, sims, hits, Plan(index.cells, per_group, measured, scanned))
