"""Rows/s and peak memory of seeds_loader at real sizes.

Generates photos.parquet (CLIP-shaped vectors and Unsplash Lite's metadata
columns) and conversions.parquet (Unsplash Lite's columns), then loads them
with `python -m seeds_loader` into a fresh store, in a subprocess whose peak
RSS is taken from wait4.  The baseline, in the same run, is the engine
reading the same files itself (`INSERT INTO ... SELECT * FROM file(...)`, no
validation, no atomic swap): the most a loader on this engine can do.

    python benchmarks/load_throughput.py --photos 25000 --conversions 12000000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine, median, timed
from synth import write_conversions, write_photos

# The raw tables' sorting keys (seeds_loader/schema.py): sorting is part of the work.
NATIVE = """
import sys, chdb
store, directory, tables = sys.argv[1], sys.argv[2], sys.argv[3:]
order_by = {"photos": "photo_id", "conversions": "(photo_id, id)"}
session = chdb.session.Session(store)
session.query("CREATE DATABASE IF NOT EXISTS raw")
for table in tables:
    session.query(f"CREATE TABLE raw.{table} ENGINE = MergeTree ORDER BY {order_by[table]} "
                  "SETTINGS allow_nullable_key = 1 "
                  f"AS SELECT * FROM file('{directory}/{table}.parquet', Parquet)")
    print(table, session.query(f"SELECT count() FROM raw.{table}", "TSV").bytes().decode().strip())
session.close()
"""


def load_once(directory: Path, work: Path) -> dict[str, float]:
    store = work / "store"
    run = timed([sys.executable, "-m", "seeds_loader", str(directory)], env={"BILDSUCHE_DB_PATH": str(store)})
    shutil.rmtree(store, ignore_errors=True)
    result = {"wall_s": run.seconds, "peak_rss_mib": run.peak_rss_mib}
    for table, rows, seconds in re.findall(r"raw\.(\w+): ([\d,]+) rows loaded in ([\d.]+)s", run.output):
        result[f"{table}_rows"] = int(rows.replace(",", ""))
        result[f"{table}_s"] = float(seconds)
    return result


def native_once(directory: Path, work: Path, tables: list[str]) -> dict[str, float]:
    store = work / "native"
    run = timed([sys.executable, "-c", NATIVE, str(store), str(directory), *tables])
    shutil.rmtree(store, ignore_errors=True)
    return {"wall_s": run.seconds, "peak_rss_mib": run.peak_rss_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=25_000)
    parser.add_argument("--conversions", type=int, default=12_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    print(f"machine: {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bildsuche-load-"))
    try:
        photos_dir, both_dir = work / "photos", work / "both"
        photos_dir.mkdir()
        both_dir.mkdir()
        write_photos(photos_dir, args.photos)
        write_conversions(both_dir, args.conversions, args.photos)
        (both_dir / "photos.parquet").symlink_to(photos_dir / "photos.parquet")
        results = []
        for label, directory, tables in (
            (f"{args.photos:,} photos", photos_dir, ["photos"]),
            (f"{args.photos:,} photos + {args.conversions:,} conversions", both_dir, ["photos", "conversions"]),
        ):
            runs = [(load_once(directory, work), native_once(directory, work, tables)) for _ in range(args.repeats)]
            loader = {key: median([r[0][key] for r in runs]) for key in runs[0][0]}
            native = {key: median([r[1][key] for r in runs]) for key in runs[0][1]}
            row = {"data": label, "loader": loader, "native": native}
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        "\n| data | loader wall s | rows/s (table: rows / loader's table time) | peak RSS MiB | "
        "engine file() wall s | loader / engine time |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        loader, native = r["loader"], r["native"]
        tables = [t for t in ("photos", "conversions") if t + "_s" in loader]
        # The loader prints its table times to 0.1 s: a faster table has no rate to show.
        rates = ", ".join(
            f"{t}: {loader[t + '_rows'] / loader[t + '_s']:,.0f}" if loader[t + "_s"] else f"{t}: under 0.1 s"
            for t in tables
        )
        print(
            f"| {r['data']} | {loader['wall_s']:.2f} | {rates} | {loader['peak_rss_mib']:.0f} | "
            f"{native['wall_s']:.2f} | {loader['wall_s'] / native['wall_s']:.2f}× |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
