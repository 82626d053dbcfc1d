"""Top-K query latency and recall@10: the embedded store, numpy, usearch.

Queries a store built by `dbt build` (benchmarks/dbt_build.py --keep DIR):
the `neighbours` parameterized view, as top_k_neighbours and BI tools ask it
(`select photo_id from analytics.neighbours(photo_id = '…', k = 10)`), with
several `hnsw_candidate_list_size_for_search` (ef_search) values; the same
search with the query vector as a literal and as a query parameter; the
engine without its index; numpy exact search; and usearch (the standalone
HNSW library, same M, ef_construction and bf16 quantization) with the
ef_search that reaches the store's recall.  recall@10 is against exact numpy
search, the query photo excluded; latencies are per query, warm.

    python benchmarks/topk_queries.py --store /tmp/bildsuche-1m --queries 200
    python benchmarks/topk_queries.py --photos 25000 --queries 200   # builds its own store
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine, median, percentile, timed_each, vector_literal

K = 10
SETTINGS = {"vector_search_with_rescoring": 1}


def read_vectors(store_dir: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(store_dir / "data" / "photos.parquet", columns=["photo_id", "photo_embed"])
    embeds = table.column("photo_embed").combine_chunks()
    x = pc.list_flatten(embeds).to_numpy().reshape(len(table), -1)
    return table.column("photo_id").to_pylist(), np.ascontiguousarray(x, dtype=np.float32)


def exact(x: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    truth = []
    for start in range(0, len(queries), 16):
        q = queries[start : start + 16]
        sims = x[q] @ x.T
        sims[np.arange(len(q)), q] = -np.inf
        truth += [set(map(int, row)) for row in np.argpartition(-sims, K, axis=1)[:, :K]]
    return truth


def summary(label: str, latencies: list[float], hits: int, queries: int, **extra: object) -> dict:
    row = {
        "method": label,
        "p50_ms": round(median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "recall_at_10": round(hits / (K * queries), 4),
        **extra,
    }
    print(json.dumps(row), flush=True)
    return row


def timed_search(search: Callable[[int], list[int]], queries: np.ndarray, truth: list[set[int]]) -> tuple[list, int]:
    for q in queries[:3]:
        search(int(q))  # warm: the index is read into memory on first use
    latencies, answers = timed_each(search, [int(q) for q in queries])
    hits = sum(
        len(expected & set([i for i in found if i != q][:K]))
        for q, expected, found in zip(queries, truth, answers, strict=True)
    )
    return latencies, hits


def engine_rows(
    store: Path,
    ids: list[str],
    x: np.ndarray,
    queries: np.ndarray,
    truth: list[set[int]],
    efs: list[int],
    exact_queries: int,
) -> list[dict]:
    position = {pid: i for i, pid in enumerate(ids)}
    rows = []
    with connect(store / "store") as client:
        started = time.perf_counter()
        client.query(
            "SELECT photo_id FROM analytics.neighbours(photo_id = {p:String}, k = 10)",
            parameters={"p": ids[int(queries[0])]},
            settings=SETTINGS,
        )
        cold_ms = (time.perf_counter() - started) * 1000

        def view(settings: dict) -> Callable[[int], list[int]]:
            sql = "SELECT photo_id FROM analytics.neighbours(photo_id = {p:String}, k = 10)"
            return lambda q: [
                position[r[0]] for r in client.query(sql, parameters={"p": ids[q]}, settings=settings).result_rows
            ]

        for ef in efs:
            settings = {**SETTINGS, "hnsw_candidate_list_size_for_search": ef}
            rows.append(
                summary(
                    f"store: neighbours view, ef_search {ef}",
                    *timed_search(view(settings), queries, truth),
                    len(queries),
                    ef_search=ef,
                    first_query_ms=round(cold_ms, 1),
                )
            )
        ef = efs[len(efs) // 2]
        settings = {**SETTINGS, "hnsw_candidate_list_size_for_search": ef}

        def literal(q: int) -> list[int]:
            sql = (
                "SELECT photo_id FROM analytics.photos "
                f"ORDER BY cosineDistance(photo_embed, {vector_literal(x[q])}) LIMIT 11"
            )
            return [position[r[0]] for r in client.query(sql, settings=settings).result_rows]

        def parameter(q: int) -> list[int]:
            sql = (
                "SELECT photo_id FROM analytics.photos "
                "ORDER BY cosineDistance(photo_embed, {v:Array(Float32)}) LIMIT 11"
            )
            rows = client.query(sql, parameters={"v": x[q].tolist()}, settings=settings).result_rows
            return [position[r[0]] for r in rows]

        rows.append(
            summary(
                f"store: literal vector, ef_search {ef}",
                *timed_search(literal, queries, truth),
                len(queries),
                ef_search=ef,
            )
        )
        rows.append(
            summary(
                f"store: query parameter vector, ef_search {ef}",
                *timed_search(parameter, queries, truth),
                len(queries),
                ef_search=ef,
            )
        )
        if exact_queries:
            few = queries[:exact_queries]
            rows.append(
                summary(
                    "store: no index (use_skip_indexes = 0)",
                    *timed_search(view({**SETTINGS, "use_skip_indexes": 0}), few, truth[:exact_queries]),
                    len(few),
                )
            )
        plan = client.query(
            "EXPLAIN indexes = 1 SELECT photo_id FROM analytics.neighbours(photo_id = {p:String}, k = 10)",
            parameters={"p": ids[int(queries[0])]},
        ).result_rows
        print("\n".join(r[0] for r in plan), flush=True)
    return rows


def numpy_row(x: np.ndarray, queries: np.ndarray, truth: list[set[int]], count: int) -> dict:
    def search(q: int) -> list[int]:
        sims = x @ x[q]
        top = np.argpartition(-sims, K + 1)[: K + 1]
        return [int(i) for i in top[np.argsort(-sims[top])]]

    return summary("numpy exact (x @ q, argpartition)", *timed_search(search, queries[:count], truth[:count]), count)


def usearch_rows(
    x: np.ndarray, queries: np.ndarray, truth: list[set[int]], m: int, ef_construction: int, efs: list[int]
) -> list[dict]:
    from usearch.index import Index

    index = Index(ndim=x.shape[1], metric="cos", dtype="bf16", connectivity=m, expansion_add=ef_construction)
    started = time.perf_counter()
    index.add(np.arange(len(x)), x)
    build_s = time.perf_counter() - started
    rows = []
    for ef in efs:
        index.expansion_search = ef

        def search(q: int) -> list[int]:
            return [int(i) for i in index.search(x[q], K + 1).keys]

        rows.append(
            summary(
                f"usearch bf16 M {m} ef_construction {ef_construction}, ef_search {ef}",
                *timed_search(search, queries, truth),
                len(queries),
                ef_search=ef,
                build_s=round(build_s, 1),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, help="folder left by dbt_build.py --keep")
    parser.add_argument("--photos", type=int, default=25_000, help="without --store: build a store of this size")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exact-queries", type=int, default=50, help="queries for the two exact searches")
    parser.add_argument("--ef-search", type=int, nargs="*", default=[64, 128, 256, 512])
    parser.add_argument("--usearch-ef-search", type=int, nargs="*", default=[16, 32, 64, 128, 256])
    parser.add_argument("--m", type=int, default=32, help="the store's hnsw_m (for usearch)")
    parser.add_argument("--ef-construction", type=int, default=128, help="the store's hnsw_ef_construction")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    print(f"machine: {machine()}", flush=True)
    work = args.store or Path(tempfile.mkdtemp(prefix="bildsuche-topk-"))
    try:
        if args.store is None:
            subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).parent / "dbt_build.py"),
                    "--photos",
                    str(args.photos),
                    "--conversions",
                    "0",
                    "--repeats",
                    "1",
                    "--command",
                    "run",
                    "--select",
                    "+neighbours",
                    "--keep",
                    str(work),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        ids, x = read_vectors(work)
        queries = np.random.default_rng(2).choice(len(ids), size=args.queries, replace=False)
        truth = exact(x, queries)
        rows = engine_rows(work, ids, x, queries, truth, args.ef_search, args.exact_queries)
        if args.exact_queries:
            rows.append(numpy_row(x, queries, truth, args.exact_queries))
        if args.usearch_ef_search:  # none given: no usearch build (at 1M it takes as long as the store's)
            rows += usearch_rows(x, queries, truth, args.m, args.ef_construction, args.usearch_ef_search)
    finally:
        if args.store is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(ids):,} vectors, {args.queries} queries (exact searches: {args.exact_queries}), k = {K}")
    print("| method | p50 ms | p99 ms | recall@10 |\n| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['method']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall_at_10']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
