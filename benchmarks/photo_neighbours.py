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
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
from dbt.adapters.chdb import neighbours
from dbt.adapters.chdb.engine import connect
from measure import ROOT, machine
from synth import ClipLike, LowRankClipLike

DATA = {"cliplike": ClipLike, "lowrank": LowRankClipLike}

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


def today_module(ref: str) -> ModuleType:
    """neighbours.py as committed on ``ref``, loaded beside the working tree's."""
    source = subprocess.run(
        ["git", "show", f"{ref}:adapter/dbt/adapters/chdb/neighbours.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bildsuche-today-")) / "neighbours_today.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("neighbours_today", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_once(x: np.ndarray, new_percent: float, k: int, method: str, today: ModuleType | None) -> dict[str, float]:
    n = len(x)
    ids = [f"p{i:08d}" for i in range(n)]
    first = n - int(n * new_percent / 100)
    workdir = Path(tempfile.mkdtemp(prefix="bildsuche-nb-"))
    module = today if method == "today" else neighbours

    def refresh() -> neighbours.UpdateStats:
        if module is neighbours:
            return neighbours.refresh(client, SOURCE, TARGET, k, COLUMNS, method=method)
        assert module is not None
        return module.refresh(client, SOURCE, module.Target(*TARGET.__dict__.values()), k,  # type: ignore[no-any-return]
                              module.Columns("photo_id", "photo_embed"))  # fmt: skip

    try:
        client = connect(workdir / "store")
        client.command("create database bench")
        client.command(
            "create table bench.photos (photo_id String, photo_embed Array(Float32))"
            " engine = MergeTree order by photo_id"
        )
        insert(client, ids[:first], x[:first])
        full = refresh()
        insert(client, ids[first:], x[first:])
        incremental = refresh()
        unchanged = refresh()
        result = {
            "full_s": full.seconds,
            "incremental_s": incremental.seconds,
            "incremental_searched": incremental.searched,
            "incremental_merged": incremental.merged,
            "unchanged_s": unchanged.seconds,
            "recall_at_10": recall(client, ids, x, k, 500),
            "full_method": getattr(full, "method", "exact"),
            "full_cells": getattr(full, "cells", 0),
            "full_per_group": getattr(full, "per_group", 0),
            "full_sample_recall": getattr(full, "sample_recall", None),
            "incremental_method": getattr(incremental, "method", "exact"),
        }
        client.close()
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def summary(runs: list[dict[str, float]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        out[key] = statistics.median(values) if numeric else values[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=25000)
    parser.add_argument("--new", type=float, default=1.0, help="percent of photos added by the incremental run")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["exact"], choices=["today", "exact", "approximate", "auto"])
    parser.add_argument("--data", nargs="+", default=["cliplike"], choices=sorted(DATA))
    parser.add_argument("--today-ref", default="main", help="git ref whose neighbours.py `today` runs")
    args = parser.parse_args()
    today = today_module(args.today_ref) if "today" in args.methods else None
    print(machine(), flush=True)
    rows = []
    for data in args.data:
        for seed in range(args.repeats):
            x = DATA[data](args.n, 512, seed + 1).all()
            for method in args.methods:
                started = time.perf_counter()
                result = run_once(x, args.new, args.k, method, today)
                print(json.dumps({"data": data, "seed": seed, "method": method, **result,
                                  "wall_s": round(time.perf_counter() - started, 1)}), flush=True)  # fmt: skip
                rows.append((data, method, result))
    print(f"\n{args.n:,} photos, +{args.new} % incremental, k {args.k}, medians of {args.repeats}")
    print("| data | method | full s | incremental s | nothing new s | recall@10 | search (full) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for data in args.data:
        for method in args.methods:
            med = summary([r for d, m, r in rows if d == data and m == method])
            how = med["full_method"]
            if how == "approximate":
                how = (
                    f"approximate, {med['full_cells']} cells, {med['full_per_group']} per group,"
                    f" sample recall {med['full_sample_recall']}"
                )
            print(f"| {data} | {method} | {med['full_s']:.2f} | {med['incremental_s']:.2f} | {med['unchanged_s']:.2f}"
                  f" | {med['recall_at_10']:.4f} | {how} |")  # fmt: skip


if __name__ == "__main__":
    main()
