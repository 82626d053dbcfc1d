"""Why photo_neighbours' approximate search does or does not pay on a data set.

For k-means cells over n generated vectors (dbt.adapters.chdb.allpairs), and
each number of cells compared with a group of query photos: the share of the
rows each query is compared with (its cost against the exact search's 1.0)
and the share of its true 10 nearest that lie in those cells (the recall the
search can reach), on 1,000 sampled photos against exact search.  Also each
data set's neighbour profile (mean cosine to the nearest #1, #10, #50, #500).

    python benchmarks/cells_coverage.py --n 100000 --data cliplike lowrank
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from dbt.adapters.chdb import allpairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine
from synth import ClipLike, LowRankClipLike

DATA = {"cliplike": ClipLike, "lowrank": LowRankClipLike}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--data", nargs="+", default=["cliplike", "lowrank"], choices=sorted(DATA))
    parser.add_argument("--cells", type=int, default=0, help="k-means cells (0: the search's default)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    print(machine(), flush=True)
    for data in args.data:
        x = DATA[data](args.n).all()
        rng = np.random.default_rng(1)
        sample = np.sort(rng.choice(args.n, size=1000, replace=False))
        truth, truth_sims = allpairs.exact_top(x, sample, args.k)
        sims = x[sample[:200]] @ x.T
        sims[np.arange(200), sample[:200]] = -np.inf
        ordered = -np.sort(-sims, axis=1)
        profile = ", ".join(f"#{r} {ordered[:, r - 1].mean():.3f}" for r in (1, 10, 50, 500))
        started = time.perf_counter()
        index = allpairs.Index(x, args.cells or allpairs.default_cells(args.n), float(np.median(truth_sims[:, -1])))
        built = time.perf_counter() - started
        largest = index.sizes.max() / args.n
        print(f"\n{data}, {args.n:,} vectors: neighbour cosines {profile}; {index.cells} cells"
              f" (k-means and assignment {built:.1f} s), the largest holding {largest:.1%} of the rows")  # fmt: skip
        print("| cells per group | rows compared per query | true 10 nearest in them |")
        print("| --- | --- | --- |")
        everything = torch.from_numpy(np.arange(args.n))
        for per_group in allpairs.PER_GROUP:
            groups = index.groups(torch.from_numpy(sample), everything, per_group)
            scanned = index.scanned(groups)
            covered = index.covered(groups, torch.from_numpy(sample), truth)
            print(f"| {per_group} | {scanned:.3f} | {covered:.4f} |", flush=True)
            if covered >= 0.999 or per_group >= index.cells:
                break


if __name__ == "__main__":
    main()
