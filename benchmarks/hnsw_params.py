"""HNSW parameters of the photos index: build time, index bytes per vector, top-K latency and recall@10.

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
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine, median, percentile, timed_each, vector_literal
from synth import ClipLike, vectors_array

DEFAULT_CONFIGS = ("none", "bf16,16,128", "bf16,32,128", "bf16,64,256", "f32,32,128", "i8,32,128")


def exact_neighbours(x: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    sims = x[queries] @ x.T
    sims[np.arange(len(queries)), queries] = -np.inf  # the target itself is excluded
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return [set(map(int, row)) for row in top]


def load_table(client, x: np.ndarray, granularity: int, table: str = "bench.photos") -> None:
    """x as one part of `table` (id, photo_embed), in granules of `granularity` rows as `photos` is."""
    client.command(f"DROP TABLE IF EXISTS {table}")
    client.command(
        f"CREATE TABLE {table} (id UInt32, photo_embed Array(Float32)) ENGINE = MergeTree ORDER BY id "
        f"SETTINGS index_granularity = {int(granularity)}"
    )
    for start in range(0, len(x), 50_000):
        chunk = x[start : start + 50_000]
        ids = pa.array(np.arange(start, start + len(chunk), dtype=np.uint32))
        client.insert_arrow(table, pa.table({"id": ids, "photo_embed": vectors_array(chunk)}))
    client.command(f"OPTIMIZE TABLE {table} FINAL")


def build_index(client, config: str, dim: int, table: str = "bench.photos") -> float:
    """Seconds to add and materialize the index `config` (quantization,M,ef_construction) as the post-hook does."""
    started = time.perf_counter()
    quant, m, ef = config.split(",")
    client.command(
        f"ALTER TABLE {table} ADD INDEX idx photo_embed TYPE vector_similarity("
        f"'hnsw', 'cosineDistance', {dim}, '{quant}', {int(m)}, {int(ef)}) GRANULARITY 100000000"
    )
    client.command(f"ALTER TABLE {table} MATERIALIZE INDEX idx SETTINGS mutations_sync = 2")
    return time.perf_counter() - started


def index_bytes(client, table: str = "bench.photos") -> int:
    """Bytes the vector index takes on disk (its graph and vectors, as the engine loads them)."""
    db, name = table.split(".")
    return int(
        client.query(
            "SELECT sum(secondary_indices_compressed_bytes) FROM system.parts "
            f"WHERE database = '{db}' AND table = '{name}' AND active"
        ).result_rows[0][0]
    )


def search(client, x: np.ndarray, queries: np.ndarray, truth: list[set[int]], k: int, settings: dict) -> dict:
    """Top-k of each query photo by the literal-vector query; p50/p99 ms and recall@k."""
    statements = [
        f"SELECT id FROM bench.photos ORDER BY cosineDistance(photo_embed, {vector_literal(x[q])}) LIMIT {k + 1}"
        for q in queries
    ]
    latencies, answers = timed_each(lambda sql: client.query(sql, settings=settings).result_rows, statements)
    hits = sum(
        len(expected & set([r[0] for r in rows if r[0] != q][:k]))
        for q, expected, rows in zip(queries, truth, answers, strict=True)
    )
    return {
        "p50_ms": round(median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "recall_at_k": round(hits / (k * len(queries)), 4),
    }


def run_config(client, x, queries, truth, config: str, k: int, efs: list[int], rescoring: bool) -> list[dict]:
    load_table(client, x, 32)
    build_s = build_index(client, config, x.shape[1]) if config != "none" else 0.0  # none: brute force
    per_vector = index_bytes(client) / len(x) if config != "none" else 0.0
    rows = []
    for ef in efs if config != "none" else [0]:
        settings = {"vector_search_with_rescoring": int(rescoring)}
        if ef:
            settings["hnsw_candidate_list_size_for_search"] = ef
        rows.append(
            {
                "config": config,
                "ef_search": ef,
                "build_s": round(build_s, 2),
                "index_bytes_per_vector": round(per_vector, 1),
                **search(client, x, queries, truth, k, settings),
            }
        )
    return rows


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
    parser.add_argument(
        "--ef-search",
        type=int,
        nargs="*",
        default=[0],
        help="hnsw_candidate_list_size_for_search values (0: engine default, 256)",
    )
    parser.add_argument("--rescoring", action="store_true", help="re-score with float32 (as the marts query)")
    parser.add_argument("--json", type=Path, help="write the results here as well")
    args = parser.parse_args()

    host = machine()
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
                runs = [
                    run_config(client, x, queries, truth, config, args.k, args.ef_search, args.rescoring)
                    for _ in range(args.repeats)
                ]
                keys = ("build_s", "p50_ms", "p99_ms", "recall_at_k")  # the HNSW build is not deterministic
                for same in zip(*runs, strict=True):
                    results.append({**same[0], **{key: median([r[key] for r in same]) for key in keys}})
                    print(json.dumps(results[-1]), flush=True)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    print(
        f"\nmachine: {host}; "
        f"n={args.n}, dim={args.dim}, queries={args.queries}, k={args.k}, repeats={args.repeats}, "
        f"re-scoring {'on' if args.rescoring else 'off'}"
    )
    print(
        "| quantization,M,ef_construction | ef_search | index build s | index bytes/vector | p50 ms | p99 ms "
        "| recall@10 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        ef = r["ef_search"] or ("–" if r["config"] == "none" else "256 (default)")
        print(
            f"| {r['config']} | {ef} | {r['build_s']:.2f} | {r['index_bytes_per_vector']:.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['recall_at_k']:.4f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
