"""`bildsuche load DIR` (= `python -m seeds_loader DIR`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bildsuche.cli.embed import add_target_argument
from bildsuche.cli.progress import ProgressLine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="folder holding photos.parquet (and conversions.parquet)")
    add_target_argument(parser)
    parser.add_argument(
        "--dim", type=int, help="refuse vectors of another length (default: every vector as long as the first)"
    )
    parser.add_argument(
        "--embed-model",
        metavar="NAME",
        help="the model that embedded photos.parquet, for files that do not record it "
        "(python_embed's files do; the tutorial's published parquet does not)",
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="load every table whole, and accept photos of another model or dimension than the stored ones "
        "(then run `dbt build --full-refresh`)",
    )


def command(args: argparse.Namespace) -> int:
    from bildsuche import config
    from bildsuche.store import client_for
    from seeds_loader import load

    line = ProgressLine("photos", "rows")
    with client_for(args.target) as client:
        report = load(
            client,
            args.directory,
            dim=args.dim,
            embed_model=args.embed_model,
            progress=lambda t, d, n: line.update(d, n, t),
            full_refresh=args.full_refresh,
            cluster=config.cluster_name(args.target),
        )
    if report.finished_earlier_load:
        print("finished the swaps of an earlier load that was interrupted after it committed")
    for table, rows in report.rows.items():
        change = report.changes.get(table)
        if change is None:
            print(f"raw.{table}: {rows:,} rows loaded in {report.seconds[table]:.1f}s")
        else:
            print(
                f"raw.{table}: {rows:,} rows, {change.added:,} added, {change.changed:,} changed, "
                f"{change.removed:,} removed in {report.seconds[table]:.1f}s"
            )
    for table in report.unchanged:
        print(f"raw.{table}: unchanged (the file it was loaded from)")
    print(f"raw.photos: {report.dim}-dimensional vectors embedded by {report.embed_model}")
    for table in report.skipped:
        print(f"raw.{table}: no {table}.parquet given, left as it was")
    for table, columns in report.columns_left_out.items():
        print(
            f"raw.{table}: columns left out (a type or a name the store cannot take): {', '.join(map(repr, columns))}"
        )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
