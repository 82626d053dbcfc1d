"""Wall time of `dbt build` on a generated store, and where it goes.

Generates N photos (CLIP-shaped vectors, Unsplash Lite metadata) and M
conversions (benchmarks/synth.py), loads them with seeds_loader, then runs
`dbt build` in a subprocess (wall time, peak RSS) and reads every node's time
from dbt's run_results.json.  The vector index is built inside `dbt build`
(post-hook of `photos`), so its time is in the figures.

    python benchmarks/dbt_build.py --photos 25000 --conversions 12000000 --repeats 3
    python benchmarks/dbt_build.py --photos 1000000 --conversions 12000000 --repeats 1 \
        --exclude photo_neighbours+ --keep /tmp/bildsuche-1m

--keep leaves the built store (and the data) in that folder, for
topk_queries.py and filtered_topk.py to query.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import BIN, machine, median, timed
from synth import write_conversions, write_photos


def build(work: Path, store: Path, dbt_args: list[str], command: str = "build") -> dict:
    target = work / "target"
    run = timed(
        [str(BIN / "dbt"), command, "--target-path", str(target), "--log-path", str(work / "logs"), *dbt_args],
        env={"BILDSUCHE_DB_PATH": str(store), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    nodes = json.loads((target / "run_results.json").read_text())["results"]
    times = {n["unique_id"].split(".", 2)[-1]: n["execution_time"] for n in nodes}
    return {"wall_s": run.seconds, "peak_rss_mib": run.peak_rss_mib, "nodes": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=25_000)
    parser.add_argument("--conversions", type=int, default=12_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="builds, each on a freshly loaded store")
    parser.add_argument("--select", nargs="*", default=[])
    parser.add_argument("--exclude", nargs="*", default=[])
    parser.add_argument("--command", default="build", choices=["build", "run"], help="dbt command")
    parser.add_argument("--vars", default="", help="dbt vars, e.g. '{hnsw_m: 16, hnsw_ef_construction: 64}'")
    parser.add_argument("--keep", type=Path, help="build here and leave store and data in place")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    dbt_args = (
        (["--select", *args.select] if args.select else [])
        + (["--exclude", *args.exclude] if args.exclude else [])
        + (["--vars", args.vars] if args.vars else [])
    )
    print(f"machine: {machine()}", flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bildsuche-dbt-"))
    work.mkdir(parents=True, exist_ok=True)
    data, store = work / "data", work / "store"
    try:
        data.mkdir(exist_ok=True)
        if not (data / "photos.parquet").exists():
            write_photos(data, args.photos)
            write_conversions(data, args.conversions, args.photos)
        runs = []
        for _ in range(args.repeats):
            # A fresh load per build: a copied store would not open (its metadata links name the original).
            shutil.rmtree(store, ignore_errors=True)
            load = timed([sys.executable, "-m", "seeds_loader", str(data)], env={"BILDSUCHE_DB_PATH": str(store)})
            runs.append({"load_s": load.seconds, **build(work, store, dbt_args, args.command)})
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "nodes"}), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    nodes = {name: median([r["nodes"].get(name, 0.0) for r in runs]) for name in runs[0]["nodes"]}
    result = {
        "photos": args.photos,
        "conversions": args.conversions,
        "dbt_args": dbt_args,
        "repeats": args.repeats,
        "load_s": median([r["load_s"] for r in runs]),
        "wall_s": median([r["wall_s"] for r in runs]),
        "wall_s_runs": [round(r["wall_s"], 2) for r in runs],
        "peak_rss_mib": median([r["peak_rss_mib"] for r in runs]),
        "nodes": nodes,
    }
    print(json.dumps(result, indent=2))
    print(
        f"\n`dbt {args.command} {' '.join(dbt_args)}` on {args.photos:,} photos, {args.conversions:,} conversions: "
        f"{result['wall_s']:.1f} s (median of {args.repeats}), peak RSS {result['peak_rss_mib']:.0f} MiB"
    )
    print("| node | s |\n| --- | --- |")
    for name, seconds in sorted(nodes.items(), key=lambda kv: -kv[1])[:8]:
        print(f"| {name} | {seconds:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
