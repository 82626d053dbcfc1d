"""How nightly increments should lie in analytics.photos: one part each, or merged, and when.

Builds one table of N CLIP-shaped vectors with the photos model's layout (HNSW index, granules of
32 rows, a partition per generation, no background merges), then clones it (hard links: the same
parts and graphs) once per merge policy and adds --nights increments of 0.3 % new vectors to each,
as the incremental photos model does: an insert (the new part gets its graph), then the policy's
merge of the open generation (OPTIMIZE ... PARTITION ... FINAL: its graph rebuilt). A table built
at once from all the vectors is the fresh reference. Then every table answers the same top-10
queries (re-scored, ef_search --ef-search), in rounds that alternate between the tables; p50 and
recall@10 against exact search. No dbt here: the layout alone.

    python benchmarks/generations.py --n 100000 --nights 30 --queries 200 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine, median, percentile
from synth import ClipLike, photo_ids, vectors_array

K = 10
DDL = """
CREATE TABLE {name} (photo_id String, photo_embed Array(Float32), generation UInt32,
    INDEX idx photo_embed TYPE vector_similarity('hnsw', 'cosineDistance', {dim}, 'bf16', 32, 128)
        GRANULARITY 100000000)
ENGINE = MergeTree PARTITION BY generation ORDER BY photo_id
SETTINGS index_granularity = 32, enable_block_number_column = 1, enable_block_offset_column = 1,
    max_bytes_to_merge_at_max_space_in_pool = 1048576
"""
# One part per insert, however large (the default splits large inserts by rows and bytes).
WHOLE = {"max_insert_block_size": 10**8, "min_insert_block_size_rows": 10**8, "min_insert_block_size_bytes": 10**12}
POLICIES = {
    "no merges (a part per night)": None,
    "open generation merged every night": 1,
    "merged when it holds more than 4 parts": 4,
    "merged when it holds more than 8 parts": 8,
}


def insert(client, table: str, ids: list[str], x: np.ndarray, generation: int) -> None:  # type: ignore[no-untyped-def]
    batch = pa.table(
        {
            "photo_id": pa.array(ids),
            "photo_embed": vectors_array(x),
            "generation": pa.array([generation] * len(ids), pa.uint32()),
        }
    )
    client.insert_arrow(table, batch, settings=WHOLE)


def data_parts(client, table: str, generation: int | None = None) -> int:  # type: ignore[no-untyped-def]
    where = f" AND partition_id = '{generation}'" if generation is not None else ""
    return int(
        client.command(
            f"SELECT count() FROM system.parts WHERE database = 'bench' AND table = '{table}' AND active "
            f"AND NOT startsWith(partition_id, 'patch-'){where}"
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ef-search", type=int, default=256)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    step = max(1, args.n * 3 // 1000)
    total = args.n + args.nights * step
    x = ClipLike(total).all()
    ids = photo_ids(total).to_pylist()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bildsuche-generations-") as tmp, connect(Path(tmp) / "store") as client:
        client.command("CREATE DATABASE bench")
        client.command(DDL.format(name="bench.base", dim=x.shape[1]))
        started = time.perf_counter()
        insert(client, "bench.base", ids[: args.n], x[: args.n], 0)
        print(json.dumps({"base_build_s": round(time.perf_counter() - started, 1)}), flush=True)
        tables = {}
        for i, (label, max_parts) in enumerate(POLICIES.items()):
            table = f"bench.policy{i}"
            tables[label] = table
            client.command(DDL.format(name=table, dim=x.shape[1]))
            client.command(f"ALTER TABLE {table} ATTACH PARTITION ID '0' FROM bench.base")
            insert_s, merge_s, merges = [], [], 0
            for night in range(args.nights):
                start = args.n + night * step
                began = time.perf_counter()
                insert(client, table, ids[start : start + step], x[start : start + step], 1)
                insert_s.append(time.perf_counter() - began)
                began = time.perf_counter()
                if max_parts is not None and data_parts(client, table.split(".")[1], 1) > max_parts:
                    client.command(f"OPTIMIZE TABLE {table} PARTITION ID '1' FINAL")
                    merges += 1
                merge_s.append(time.perf_counter() - began)
            results[label] = {
                "insert_s_median": round(median(insert_s), 3),
                "merge_s_total": round(sum(merge_s), 2),
                "merge_s_max": round(max(merge_s), 2),
                "merges": merges,
                "parts": data_parts(client, table.split(".")[1]),
            }
            print(json.dumps({label: results[label]}), flush=True)
        client.command(DDL.format(name="bench.fresh", dim=x.shape[1]))
        started = time.perf_counter()
        insert(client, "bench.fresh", ids, x, 0)
        results["fresh (all at once)"] = {
            "build_s": round(time.perf_counter() - started, 1),
            "parts": data_parts(client, "fresh"),
        }
        tables["fresh (all at once)"] = "bench.fresh"

        rng = np.random.default_rng(5)
        queries = rng.choice(total, size=args.queries, replace=False)
        truth = []
        for q in queries:
            sims = x @ x[q]
            sims[q] = -np.inf
            truth.append({ids[i] for i in np.argpartition(-sims, K)[:K]})
        settings = {"vector_search_with_rescoring": 1, "hnsw_candidate_list_size_for_search": args.ef_search}
        latencies: dict[str, list[float]] = {label: [] for label in tables}
        recall: dict[str, float] = {}
        for table in tables.values():  # warm: every graph read into memory
            sql = f"SELECT photo_id FROM {table} ORDER BY cosineDistance(photo_embed, {{v:Array(Float32)}}) LIMIT 11"
            for q in queries[:5]:
                client.query(sql, parameters={"v": x[q].tolist()}, settings=settings)
        for _ in range(args.rounds):
            for label, table in tables.items():
                sql = (
                    f"SELECT photo_id FROM {table} ORDER BY cosineDistance(photo_embed, {{v:Array(Float32)}}) LIMIT 11"
                )
                hits, lat = 0, []
                for q, expected in zip(queries, truth, strict=True):
                    began = time.perf_counter()
                    rows = client.query(sql, parameters={"v": x[q].tolist()}, settings=settings).result_rows
                    lat.append((time.perf_counter() - began) * 1000)
                    hits += len(expected & {r[0] for r in rows if r[0] != ids[q]})
                latencies[label].append(median(lat))
                latencies.setdefault(label + " p99", []).append(percentile(lat, 0.99))
                recall[label] = hits / (K * len(queries))
        for label in tables:
            results[label].update(
                {
                    "p50_ms": round(median(latencies[label]), 2),
                    "p50_ms_rounds": [round(v, 2) for v in latencies[label]],
                    "p99_ms": round(median(latencies[label + " p99"]), 2),
                    "recall_at_10": round(recall[label], 4),
                }
            )
    print(json.dumps(results, indent=2))
    fresh = results["fresh (all at once)"]
    print(f"\n{args.n:,} vectors + {args.nights} nights of {step:,} (0.3 %), ef_search {args.ef_search}")
    print("| layout | parts | merges | merge s (total / max) | p50 ms | p50 / fresh | recall@10 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, row in results.items():
        merges_text = f"{row.get('merges', '–')}"
        merge_text = (
            f"{row['merge_s_total']:.1f} / {row['merge_s_max']:.1f}"
            if "merge_s_total" in row
            else f"build {row['build_s']:.1f}"
        )
        print(
            f"| {label} | {row['parts']} | {merges_text} | {merge_text} | {row['p50_ms']:.2f} | "
            f"{row['p50_ms'] / fresh['p50_ms']:.2f}x | {row['recall_at_10']:.4f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
