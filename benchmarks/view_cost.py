"""Where the neighbours view's time goes: the same top-10 asked in steps.

On a store left by dbt_build.py --keep, for the same query photos, each photo
asking every step in turn (in a shuffled order) before the next photo, so a
burst of load on the shared machine hits every step alike; re-scoring on as
the marts query.  Per step: the median latency over all rounds, and the median
over query photos of its latency divided by that of the same photo's search
with the vector in hand (the ratio the issue's target is stated in):

- `select 1`: the client's and engine's fixed cost per query;
- the target's embedding read by its primary key, alone;
- top-11 with the query vector as a query parameter (the vector in hand);
- top-11 with the vector looked up by a scalar subquery;
- the view's SQL written out in full;
- the parameterized view itself, as BI tools ask it;
- any view given with --view-sql NAME=FILE (created in the store as a
  parameterized view from FILE, e.g. an earlier version's compiled SQL, and
  dropped after), asked the same way.

    python benchmarks/view_cost.py --store /tmp/bildsuche-25k --queries 100 --rounds 3 \
        --view-sql neighbours_before=benchmarks/sql/neighbours_before.sql
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine, median

SETTINGS = {"vector_search_with_rescoring": 1}
LOOKUP = "(SELECT any(t.photo_embed) FROM analytics.photos AS t WHERE t.photo_id = {p:String})"
REFERENCE = "top-11, query parameter vector (in hand)"
Statement = tuple[str, dict[str, Any]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="folder left by dbt_build.py --keep")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--view-sql", nargs="*", default=[], metavar="NAME=FILE", help="more views to time")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    host = machine()
    extra = dict(item.split("=", 1) for item in args.view_sql)
    with connect(args.store / "store") as client:
        ids = [
            r[0]
            for r in client.query(
                "SELECT photo_id FROM analytics.photos ORDER BY sipHash64(photo_id) LIMIT {n:UInt32}",
                parameters={"n": args.queries},
            ).result_rows
        ]
        vectors = dict(
            client.query(
                "SELECT photo_id, photo_embed FROM analytics.photos WHERE photo_id IN {ids:Array(String)}",
                parameters={"ids": ids},
            ).result_rows
        )
        view_sql = client.query(
            "SELECT as_select FROM system.tables WHERE database = 'analytics' AND name = 'neighbours'"
        ).result_rows[0][0]
        for name, path in extra.items():
            client.command(f"DROP VIEW IF EXISTS analytics.{name}")
            client.command(f"CREATE VIEW analytics.{name} AS {Path(path).read_text()}")
        steps: dict[str, Callable[[str], Statement]] = {
            "select 1": lambda pid: ("SELECT 1", {}),
            "target embedding by primary key, alone": lambda pid: (LOOKUP[1:-1], {"p": pid}),
            REFERENCE: lambda pid: (
                "SELECT photo_id FROM analytics.photos "
                "ORDER BY cosineDistance(photo_embed, {v:Array(Float32)}) LIMIT 11",
                {"v": vectors[pid]},
            ),
            "top-11, vector by scalar subquery": lambda pid: (
                f"SELECT photo_id FROM analytics.photos ORDER BY cosineDistance(photo_embed, {LOOKUP}) LIMIT 11",
                {"p": pid},
            ),
            "the view's SQL written out": lambda pid: (
                "SELECT photo_id FROM ("
                + view_sql.replace("{photo_id:String}", "{p:String}").replace("{k:UInt32}", "10")
                + ")",
                {"p": pid},
            ),
            "the neighbours view": lambda pid: (
                "SELECT photo_id FROM analytics.neighbours(photo_id = {p:String}, k = 10)",
                {"p": pid},
            ),
        }
        for name in extra:
            steps[f"view {name}"] = lambda pid, name=name: (
                f"SELECT photo_id FROM analytics.{name}(photo_id = {{p:String}}, k = 10)",
                {"p": pid},
            )

        def ask(statement: Statement) -> float:
            started = time.perf_counter()
            rows = client.query(statement[0], parameters=statement[1], settings=SETTINGS).result_rows
            assert rows
            return (time.perf_counter() - started) * 1000

        try:
            for step in steps.values():
                ask(step(ids[0]))  # warm
            latencies: dict[str, list[float]] = {name: [] for name in steps}
            ratios: dict[str, list[float]] = {name: [] for name in steps}
            shuffle = random.Random(7).shuffle
            for _ in range(args.rounds):
                for pid in ids:
                    order = list(steps)
                    shuffle(order)
                    here = {name: ask(steps[name](pid)) for name in order}
                    for name in steps:
                        latencies[name].append(here[name])
                        ratios[name].append(here[name] / here[REFERENCE])
        finally:
            for name in extra:
                client.command(f"DROP VIEW IF EXISTS analytics.{name}")
    rows = [
        {
            "step": name,
            "p50_ms": round(median(latencies[name]), 2),
            "ratio_to_vector_in_hand": round(median(ratios[name]), 2),
        }
        for name in steps
    ]
    for row in rows:
        print(json.dumps(row))
    print(f"\nmachine: {host}; {args.queries} query photos, {args.rounds} rounds, re-scoring on")
    print("| step | p50 ms | / vector in hand (median of per-photo ratios) |\n| --- | --- | --- |")
    for row in rows:
        print(f"| {row['step']} | {row['p50_ms']:.2f} | {row['ratio_to_vector_in_hand']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
