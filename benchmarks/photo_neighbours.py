"""photo_neighbours: wall time of a full computation and of incremental updates.

Runs the embedded adapter's refresh (what `dbt run -s photo_neighbours` calls)
on CLIP-shaped vectors in a temporary store: first all photos but the last
`--new` percent, then those added (an incremental run), then a run with
nothing new. Recall@10 of the stored lists is checked against exact numpy
search on a sample of photos.

    python benchmarks/photo_neighbours.py --n 25000 --new 1 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from dbt.adapters.chdb import neighbours
from dbt.adapters.chdb.engine import connect
from hnsw_params import clip_like

SOURCE = "select photo_id, photo_embed from bench.photos"
TARGET = neighbours.Target("bench", "photo_neighbours", "bench.photo_neighbours", "bench.photo_neighbours__new")
COLUMNS = neighbours.Columns("photo_id", "photo_embed")


def insert(client, ids: list[str], x: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(ids), 8192):
        chunk = x[start : start + 8192]
        dim = x.shape[1]
        flat = pa.array(chunk.reshape(-1), type=pa.float32())
        offsets = pa.array(np.arange(0, (len(chunk) + 1) * dim, dim, dtype=np.int32))
        client.insert_arrow(
            "bench.photos",
            pa.table({"photo_id": ids[start : start + 8192], "photo_embed": pa.ListArray.from_arrays(offsets, flat)}),
        )


def recall(client, ids: list[str], x: np.ndarray, k: int, sample: int) -> float:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    queries = rng.choice(len(ids), size=min(sample, len(ids)), replace=False)
    sims = x[queries] @ x.T
    sims[np.arange(len(queries)), queries] = -np.inf
    truth = np.argpartition(-sims, k, axis=1)[:, :k]
    rows = client.query(
        "select photo_id, groupArray(neighbour_id) from bench.photo_neighbours"
        " where photo_id in {ids:Array(String)} group by photo_id",
        parameters={"ids": [ids[q] for q in queries]},
    ).result_rows
    got = {pid: set(nb) for pid, nb in rows}
    hits = sum(len(got.get(ids[q], set()) & {ids[j] for j in truth[i]}) for i, q in enumerate(queries))
    return hits / (len(queries) * k)


def run_once(n: int, new_percent: float, k: int, seed: int) -> dict[str, float]:
    x = clip_like(n, 512, seed)
    ids = [f"p{i:08d}" for i in range(n)]
    first = n - int(n * new_percent / 100)
    workdir = Path(tempfile.mkdtemp(prefix="bildsuche-nb-"))
    try:
        client = connect(workdir / "store")
        client.command("create database bench")
        client.command(
            "create table bench.photos (photo_id String, photo_embed Array(Float32))"
            " engine = MergeTree order by photo_id"
        )
        insert(client, ids[:first], x[:first])
        full = neighbours.refresh(client, SOURCE, TARGET, k, COLUMNS)
        insert(client, ids[first:], x[first:])
        incremental = neighbours.refresh(client, SOURCE, TARGET, k, COLUMNS)
        unchanged = neighbours.refresh(client, SOURCE, TARGET, k, COLUMNS)
        result = {
            "full_s": full.seconds,
            "incremental_s": incremental.seconds,
            "incremental_searched": incremental.searched,
            "incremental_merged": incremental.merged,
            "unchanged_s": unchanged.seconds,
            "recall_at_10": recall(client, ids, x, k, 500),
        }
        client.close()
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=25000)
    parser.add_argument("--new", type=float, default=1.0, help="percent of photos added by the incremental run")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [run_once(args.n, args.new, args.k, seed) for seed in range(args.repeats)]
    summary = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(json.dumps({"machine": platform.processor() or platform.machine(), "n": args.n, "new_percent": args.new,
                      "k": args.k, "repeats": args.repeats, "median": summary}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
