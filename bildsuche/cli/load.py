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


def command(args: argparse.Namespace) -> int:
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
        )
    for table, rows in report.rows.items():
        print(f"raw.{table}: {rows:,} rows loaded in {report.seconds[table]:.1f}s")
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
