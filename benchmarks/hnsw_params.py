"""HNSW parameters of the photos index: build time, top-K latency and recall@10.

Runs on the embedded engine (chDB) exactly as the `photos` model's post-hook
builds the index (ALTER TABLE ... ADD INDEX, then MATERIALIZE INDEX), over
CLIP-shaped vectors (512-d, L2-normalised, clustered), and queries it the way
top_k_neighbours and BI tools do (`order by cosineDistance(...) limit k + 1`).
Recall is measured against exact numpy search on the same vectors.

    python benchmarks/hnsw_params.py --n 25000 --queries 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import ClipLike

DEFAULT_CONFIGS = ("none", "bf16,16,128", "bf16,32,128", "bf16,64,256", "f32,32,128", "i8,32,128")


def exact_neighbours(x: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    sims = x[queries] @ x.T
    sims[np.arange(len(queries)), queries] = -np.inf  # the target itself is excluded
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return [set(map(int, row)) for row in top]


def run_config(client, x: np.ndarray, queries: np.ndarray, truth: list[set[int]], config: str, k: int) -> dict:
    client.command("DROP TABLE IF EXISTS bench.photos")
    client.command(
        "CREATE TABLE bench.photos (id UInt32, photo_embed Array(Float32)) ENGINE = MergeTree ORDER BY id SETTINGS index_granularity = 32"
    )
    dim = x.shape[1]
    for start in range(0, len(x), 8192):
        chunk = x[start : start + 8192]
        flat = pa.array(chunk.reshape(-1), type=pa.float32())
        offsets = pa.array(np.arange(0, (len(chunk) + 1) * dim, dim, dtype=np.int32))
        client.insert_arrow(
            "bench.photos",
            pa.table(
                {
                    "id": pa.array(np.arange(start, start + len(chunk), dtype=np.uint32)),
                    "photo_embed": pa.ListArray.from_arrays(offsets, flat),
                }
            ),
        )
    client.command("OPTIMIZE TABLE bench.photos FINAL")
    started = time.perf_counter()
    if config != "none":  # "none": brute force, the baseline the index is measured against
        quant, m, ef = config.split(",")
        client.command(
            "ALTER TABLE bench.photos ADD INDEX idx photo_embed TYPE vector_similarity("
            f"'hnsw', 'cosineDistance', {dim}, '{quant}', {int(m)}, {int(ef)}) GRANULARITY 100000000"
        )
        client.command("ALTER TABLE bench.photos MATERIALIZE INDEX idx SETTINGS mutations_sync = 2")
    build_s = time.perf_counter() - started
    latencies, hits = [], 0
    for q, expected in zip(queries, truth, strict=True):
        vector = "[" + ",".join(f"{v:.7g}" for v in x[q]) + "]"
        sql = f"SELECT id FROM bench.photos ORDER BY cosineDistance(photo_embed, {vector}) LIMIT {k + 1}"
        t = time.perf_counter()
        ids = [r[0] for r in client.query(sql).result_rows]
        latencies.append((time.perf_counter() - t) * 1000)
        hits += len(expected & set([i for i in ids if i != q][:k]))
    latencies.sort()
    return {
        "config": config,
        "build_s": round(build_s, 2),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
        "recall_at_k": round(hits / (k * len(queries)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=25_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="runs per config; medians are reported")
    parser.add_argument(
        "--configs", nargs="*", default=list(DEFAULT_CONFIGS), help="quantization,M,ef_construction, or none"
    )
    parser.add_argument("--json", type=Path, help="write the results here as well")
    args = parser.parse_args()

    x = ClipLike(args.n, args.dim, seed=1).all()
    rng = np.random.default_rng(2)
    queries = rng.choice(args.n, size=args.queries, replace=False)
    truth = exact_neighbours(x, queries, args.k)
    store = Path(tempfile.mkdtemp(prefix="bildsuche-bench-"))
    results = []
    try:
        with connect(store) as client:
            client.command("CREATE DATABASE IF NOT EXISTS bench")
            for config in args.configs:
                runs = [run_config(client, x, queries, truth, config, args.k) for _ in range(args.repeats)]
                keys = ("build_s", "p50_ms", "p99_ms", "recall_at_k")  # the HNSW build is not deterministic
                results.append({"config": config, **{key: statistics.median(r[key] for r in runs) for key in keys}})
                print(json.dumps(results[-1]), flush=True)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores; "
        f"n={args.n}, dim={args.dim}, queries={args.queries}, k={args.k}, repeats={args.repeats}"
    )
    print("| quantization,M,ef_construction | index build s | p50 ms | p99 ms | recall@10 |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['config']} | {r['build_s']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall_at_k']:.4f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
