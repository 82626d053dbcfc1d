"""Where the neighbours view's time goes: the same top-10 asked in steps.

On a store left by dbt_build.py --keep, for the same query photos, alternating
rounds (medians of the rounds' p50s), re-scoring on as the marts query:

- `select 1`: the client's and engine's fixed cost per query;
- the target's embedding read by its primary key, alone;
- top-11 with the query vector as a literal (the vector already in hand);
- top-11 with the vector looked up by a scalar subquery;
- the view's SQL written out in full (lookup, `nearest`, `final` with rank);
- the parameterized view itself, as BI tools ask it.

    python benchmarks/view_cost.py --store /tmp/bildsuche-25k --queries 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine, median, timed_each, vector_literal

SETTINGS = {"vector_search_with_rescoring": 1}
LOOKUP = "(SELECT any(t.photo_embed) FROM analytics.photos AS t WHERE t.photo_id = {p:String})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="folder left by dbt_build.py --keep")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    host = machine()
    with connect(args.store / "store") as client:
        ids = [
            r[0]
            for r in client.query(
                "SELECT photo_id FROM analytics.photos ORDER BY sipHash64(photo_id) LIMIT {n:UInt32}",
                parameters={"n": args.queries},
            ).result_rows
        ]
        vectors = {
            pid: vector_literal(embed)
            for pid, embed in client.query(
                "SELECT photo_id, photo_embed FROM analytics.photos WHERE photo_id IN {ids:Array(String)}",
                parameters={"ids": ids},
            ).result_rows
        }
        view_sql = client.query(
            "SELECT as_select FROM system.tables WHERE database = 'analytics' AND name = 'neighbours'"
        ).result_rows[0][0]
        steps = {
            "select 1": lambda pid: ("SELECT 1", {}),
            "target embedding by primary key, alone": lambda pid: (LOOKUP[1:-1], {"p": pid}),
            "top-11, literal vector": lambda pid: (
                "SELECT photo_id, cosineDistance(photo_embed, " + vectors[pid] + ") AS d "
                "FROM analytics.photos ORDER BY d LIMIT 11",
                {},
            ),
            "top-11, vector by scalar subquery": lambda pid: (
                f"SELECT photo_id, cosineDistance(photo_embed, {LOOKUP}) AS d "
                "FROM analytics.photos ORDER BY d LIMIT 11",
                {"p": pid},
            ),
            "the view's SQL written out": lambda pid: (
                view_sql.replace("{photo_id:String}", "{p:String}").replace("{k:UInt32}", "10"),
                {"p": pid},
            ),
            "the neighbours view": lambda pid: (
                "SELECT * FROM analytics.neighbours(photo_id = {p:String}, k = 10)",
                {"p": pid},
            ),
        }

        def ask(statement: tuple[str, dict]) -> Sequence[Sequence[Any]]:
            return client.query(statement[0], parameters=statement[1], settings=SETTINGS).result_rows

        p50s: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                statements = [step(pid) for pid in ids]
                ask(statements[0])  # warm
                latencies, answers = timed_each(ask, statements)
                assert all(answers)
                p50s[name].append(median(latencies))
    rows = [{"step": name, "p50_ms": round(median(values), 2)} for name, values in p50s.items()]
    for row in rows:
        print(json.dumps(row))
    print(f"\nmachine: {host}; {args.queries} query photos, {args.rounds} rounds, re-scoring on")
    print("| step | p50 ms |\n| --- | --- |")
    for row in rows:
        print(f"| {row['step']} | {row['p50_ms']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
