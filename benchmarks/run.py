"""Run the whole benchmark suite, each script in its own process.

    python benchmarks/run.py --quick        # small sizes: every script runs (CI, about a minute)
    python benchmarks/run.py                # the 25k figures of docs/benchmarks.md
    python benchmarks/run.py --million      # the 25k figures, then the 1M ones (an hour or more)

The query benchmarks share one store left by dbt_build.py (--keep), so the
vector index is built once per size.  Every command is printed before it runs;
docs/benchmarks.md gives each figure with the command that produced it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def steps(store: Path, quick: bool, million: bool) -> list[list[str]]:
    if quick:
        return [
            ["hnsw_params.py", "--n", "2000", "--queries", "20", "--repeats", "1", "--configs", "none", "bf16,32,128",
             "--ef-search", "64", "256", "--rescoring"],
            ["granules.py", "--n", "2000", "--queries", "10", "--rounds", "1", "--granularities", "256", "32"],
            ["embed_throughput.py", "--images", "16", "--repeats", "1", "--architecture", "tiny"],
            ["ray_build.py", "--photos", "16", "--repeats", "1", "--architecture", "tiny", "--batch-size", "8"],
            ["embed_variants.py", "--images", "8", "--repeats", "1", "--architecture", "tiny"],
            ["photo_neighbours.py", "--n", "3000", "--repeats", "1", "--methods", "exact", "approximate"],
            ["cells_coverage.py", "--n", "3000"],
            ["index_memory.py", "--n", "1000", "--quantizations", "bf16", "i8"],
            ["load_throughput.py", "--photos", "2000", "--conversions", "100000", "--repeats", "1"],
            ["dbt_build.py", "--photos", "2000", "--conversions", "20000", "--repeats", "1", "--keep", str(store)],
            ["topk_queries.py", "--store", str(store), "--queries", "20", "--exact-queries", "5",
             "--ef-search", "64", "256", "--usearch-ef-search", "32", "128"],
            ["view_cost.py", "--store", str(store), "--queries", "10", "--rounds", "1"],
            ["filtered_topk.py", "--store", str(store), "--queries", "5", "--multipliers", "10"],
            ["serve_load.py", "--photos", "300", "--clients", "2", "--seconds", "2", "--max-concurrent", "2",
             "--read-repeats", "3"],
            ["serve_overhead.py", "--photos", "300", "--requests", "30", "--rounds", "1"],
            ["startup.py", "--repeats", "1"],
            ["insights_cost.py", "--photos", "1000", "--conversions", "20000", "--keywords", "50", "--repeats", "1"],
            ["keyword_holdout.py", "--sample", "120"],
            ["nightly.py", "--photos", "2000", "--conversions", "20000", "--increments", "2", "--queries", "10",
             "--rounds", "1"],
            ["generations.py", "--n", "2000", "--nights", "3", "--queries", "10", "--rounds", "1"],
        ]  # fmt: skip
    suite = [
        ["hnsw_params.py", "--n", "25000", "--queries", "200", "--repeats", "3"],
        ["hnsw_params.py", "--n", "100000", "--queries", "100", "--repeats", "1", "--configs", "bf16,32,128",
         "f32,32,128", "--ef-search", "256", "512", "1024", "--rescoring"],
        ["granules.py", "--n", "25000", "--queries", "200", "--rounds", "3"],
        ["embed_throughput.py", "--images", "256", "--repeats", "3"],
        ["ray_build.py", "--photos", "256", "--repeats", "3"],
        ["embed_variants.py", "--images", "64", "--repeats", "3"],
        ["photo_neighbours.py", "--n", "100000", "--repeats", "1", "--methods", "today", "exact", "approximate",
         "--data", "lowrank", "cliplike"],
        ["cells_coverage.py", "--n", "100000"],
        ["index_memory.py", "--n", "20000"],
        ["load_throughput.py", "--photos", "25000", "--conversions", "12000000", "--repeats", "3"],
        ["dbt_build.py", "--photos", "25000", "--conversions", "12000000", "--repeats", "3", "--keep", str(store)],
        ["topk_queries.py", "--store", str(store), "--queries", "200"],
        ["view_cost.py", "--store", str(store), "--queries", "100", "--rounds", "3",
         "--view-sql", f"neighbours_before={HERE / 'sql' / 'neighbours_before.sql'}"],
        ["filtered_topk.py", "--store", str(store), "--queries", "50",
         "--view-sql", f"filtered_neighbours_before={HERE / 'sql' / 'filtered_neighbours_before.sql'}"],
        ["serve_load.py", "--photos", "25000", "--clients", "8", "--seconds", "20", "--max-concurrent", "1", "2", "4"],
        ["serve_overhead.py", "--photos", "2000", "--requests", "400", "--rounds", "5"],
        ["dbt_build.py", "--photos", "100000", "--conversions", "0", "--repeats", "1", "--command", "run",
         "--select", "+photo_neighbours"],
        ["startup.py", "--repeats", "7"],
        ["insights_cost.py", "--photos", "25000", "--conversions", "1000000", "--keywords", "1000", "--repeats", "3"],
        ["keyword_holdout.py", "--sample", "2000"],
        ["generations.py", "--n", "100000", "--nights", "30", "--queries", "200", "--rounds", "3"],
        ["nightly.py", "--photos", "100000", "--conversions", "1000000", "--increments", "30", "--queries", "200",
         "--rounds", "3"],
    ]  # fmt: skip
    if million:
        big = store.with_name(store.name + "-1m")
        suite += [
            ["dbt_build.py", "--photos", "1000000", "--conversions", "12000000", "--repeats", "1",
             "--exclude", "photo_neighbours+", "--keep", str(big)],
            ["topk_queries.py", "--store", str(big), "--queries", "200", "--exact-queries", "20",
             "--ef-search", "256", "512", "1024", "2048", "--usearch-ef-search", "128", "256", "512", "1024"],
            ["filtered_topk.py", "--store", str(big), "--queries", "50", "--ef-search", "1024"],
            # Nightly runs at 1M: the targets (nothing changed <= 60 s, +1 % <= 3 min, 30 nights).
            ["nightly.py", "--photos", "1000000", "--conversions", "12000000", "--increments", "30",
             "--queries", "200", "--rounds", "3", "--ef-search", "1024"],
        ]  # fmt: skip
    return suite


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that every script runs")
    parser.add_argument("--million", action="store_true", help="add the 1M-vector figures")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bildsuche-suite-"))
    started = time.perf_counter()
    try:
        for step in steps(root / "store", args.quick, args.million):
            command = [sys.executable, str(HERE / step[0]), *step[1:]]
            print(f"\n$ python benchmarks/{' '.join(step)}", flush=True)
            step_started = time.perf_counter()
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # The tables close every script's output; the JSON lines before them are for --json readers.
            print(result.stdout if not args.quick else result.stdout[-1500:], flush=True)
            print(f"({time.perf_counter() - step_started:.1f} s)", flush=True)
            if result.returncode:
                print(f"benchmarks/{step[0]} failed with exit status {result.returncode}", file=sys.stderr)
                return 1
            if step[0] == "filtered_topk.py":
                shutil.rmtree(Path(step[2]), ignore_errors=True)  # the store is large; the queries are done
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nsuite done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
