"""Filtered top-K: recall@10, rows returned and latency for filters keeping 50 %, 10 % and 1 %.

Queries a store built by `dbt build` (benchmarks/dbt_build.py --keep DIR) on
benchmarks/synth.py's data, whose countries have fixed shares
(synth.FILTER_COUNTRIES).  Two strategies for the same question, "the 10
photos nearest to P among the photos of country C":

- the `filtered_neighbours` parameterized view, as BI tools ask it (an index
  search checked against the filters when many photos pass, exact search
  among the photos that pass when few do);
- any view given with --view-sql NAME=FILE (created in the store from FILE,
  e.g. an earlier version's compiled SQL, and dropped after), asked the same
  way;
- postfilter: the vector index first, `vector_search_index_fetch_multiplier`
  times k candidates, then the filter (vector_search_filter_strategy =
  'postfilter'), for several multipliers.

recall@10 is against exact numpy search among the photos that pass.  Each query
photo asks every strategy in turn (in a shuffled order) before the next photo.

    python benchmarks/filtered_topk.py --store /tmp/bildsuche-1m --queries 50 \
        --view-sql filtered_neighbours_before=benchmarks/sql/filtered_neighbours_before.sql
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine, median, percentile
from synth import FILTER_COUNTRIES
from topk_queries import K, read_vectors

VIEW = (
    "SELECT photo_id FROM analytics.{view}(photo_id = {{p:String}}, k = 10, keyword = '', colour = '', "
    "country = {{c:String}}, photographer = '', date_from = '', date_to = '', min_downloads = 0)"
)
POSTFILTER = (
    "SELECT photo_id FROM analytics.photos WHERE photo_id != {p:String} AND photo_id IN "
    "(SELECT photo_id FROM analytics.photo_attributes WHERE lower(country) = lower({c:String})) "
    "ORDER BY cosineDistance(photo_embed, "
    "(SELECT photo_embed FROM analytics.photos WHERE photo_id = {p:String} LIMIT 1)) LIMIT 10"
)


def run(
    client,
    strategies: list[tuple[str, str, dict]],
    ids: list[str],
    position: dict[str, int],
    country: str,
    queries: np.ndarray,
    truth: list[set[int]],
) -> list[dict]:
    """Every strategy for each query photo in turn (shuffled), so bursts of load hit all alike."""

    def ask(sql: str, settings: dict, q: int) -> tuple[float, float, list]:
        started, cpu = time.perf_counter(), time.process_time()
        rows = client.query(sql, parameters={"p": ids[q], "c": country}, settings=settings).result_rows
        return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, rows

    for _, sql, settings in strategies:
        ask(sql, settings, int(queries[0]))  # warm
    latencies: list[list[float]] = [[] for _ in strategies]
    cpu_times: list[list[float]] = [[] for _ in strategies]
    answers: list[list[list]] = [[] for _ in strategies]
    order = list(range(len(strategies)))
    shuffle = random.Random(5).shuffle
    for q in queries:
        shuffle(order)
        for i in order:
            ms, cpu_ms, rows = ask(strategies[i][1], strategies[i][2], int(q))
            latencies[i].append(ms)
            cpu_times[i].append(cpu_ms)
            answers[i].append(rows)
    results = []
    for (name, _, _), times, cpu, got in zip(strategies, latencies, cpu_times, answers, strict=True):
        hits = sum(len(expected & {position[r[0]] for r in rows}) for expected, rows in zip(truth, got, strict=True))
        results.append(
            {
                "strategy": name,
                "p50_ms": round(median(times), 2),
                "p99_ms": round(percentile(times, 0.99), 2),
                # the engine runs in this process: its CPU time, all threads, is less swayed by other work
                "cpu_p50_ms": round(median(cpu), 2),
                "recall_at_10": round(hits / (K * len(queries)), 4),
                "rows_per_query": round(sum(len(rows) for rows in got) / len(queries), 2),
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, help="folder left by dbt_build.py --keep")
    parser.add_argument("--photos", type=int, default=25_000, help="without --store: build a store of this size")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--multipliers", type=int, nargs="*", default=[1, 10, 100])
    parser.add_argument("--ef-search", type=int, default=256)
    parser.add_argument("--view-sql", nargs="*", default=[], metavar="NAME=FILE", help="more views to time")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    print(f"machine: {machine()}", flush=True)
    work = args.store or Path(tempfile.mkdtemp(prefix="bildsuche-filtered-"))
    results = []
    try:
        if args.store is None:
            subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).parent / "dbt_build.py"),
                    "--photos",
                    str(args.photos),
                    "--conversions",
                    str(args.photos * 4),
                    "--repeats",
                    "1",
                    "--command",
                    "run",
                    "--select",
                    "+neighbours",
                    "+filtered_neighbours",
                    "--keep",
                    str(work),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        ids, x = read_vectors(work)
        position = {pid: i for i, pid in enumerate(ids)}
        countries = np.array(
            pq.read_table(work / "data" / "photos.parquet", columns=["photo_location_country"]).column(0).to_pylist()
        )
        base = {"vector_search_with_rescoring": 1, "hnsw_candidate_list_size_for_search": args.ef_search}
        extra = dict(item.split("=", 1) for item in args.view_sql)
        with connect(work / "store") as client:
            for name, path in extra.items():
                client.command(f"DROP VIEW IF EXISTS analytics.{name}")
                client.command(f"CREATE VIEW analytics.{name} AS {Path(path).read_text()}")
            for country, share in FILTER_COUNTRIES.items():
                passing = np.flatnonzero(countries == country)
                queries = np.random.default_rng(4).choice(len(ids), size=args.queries, replace=False)
                sims = x[queries] @ x[passing].T
                sims[passing[None, :] == queries[:, None]] = -np.inf
                truth = [set(map(int, passing[row])) for row in np.argpartition(-sims, K, axis=1)[:, :K]]
                label = f"{country} ({share:.0%}, {len(passing):,} photos)"
                views = ["filtered_neighbours", *extra]
                strategies = [(f"{name} view", VIEW.format(view=name), base) for name in views] + [
                    (
                        f"postfilter, fetch multiplier {m}",
                        POSTFILTER,
                        {
                            **base,
                            "vector_search_filter_strategy": "postfilter",
                            "vector_search_index_fetch_multiplier": m,
                        },
                    )
                    for m in args.multipliers
                ]
                for row in run(client, strategies, ids, position, country, queries, truth):
                    results.append({"filter": label, **row})
                    print(json.dumps(results[-1]), flush=True)
            for name in extra:
                client.command(f"DROP VIEW IF EXISTS analytics.{name}")
    finally:
        if args.store is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(ids):,} photos, {args.queries} queries per filter, k = {K}, ef_search {args.ef_search}")
    print("| filter keeps | strategy | p50 ms | p99 ms | CPU p50 ms | recall@10 | rows returned |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['filter']} | {r['strategy']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_p50_ms']:.2f} | "
            f"{r['recall_at_10']:.4f} | {r['rows_per_query']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
