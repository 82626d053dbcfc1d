"""`python -m seeds_loader DIR [--target T] [--dim N] [--embed-model NAME]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bildsuche import config
from bildsuche.progress import ProgressLine
from bildsuche.store import client_for
from seeds_loader.loader import load
from seeds_loader.schema import DEFAULT_DIM


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="folder holding photos.parquet (and conversions.parquet)")
    parser.add_argument(
        "--target", choices=config.TARGETS, help="profiles.yml target (default: $BILDSUCHE_TARGET or embedded)"
    )
    parser.add_argument(
        "--dim", type=int, default=DEFAULT_DIM, help=f"embedding dimension to enforce (default {DEFAULT_DIM})"
    )
    parser.add_argument(
        "--embed-model",
        metavar="NAME",
        help="the model that embedded photos.parquet, for files that do not record it "
        "(python_embed's files do; the tutorial's published parquet does not)",
    )


def load_command(args: argparse.Namespace) -> int:
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
    print(f"raw.photos: embedded by {report.embed_model}")
    for table in report.skipped:
        print(f"raw.{table}: no {table}.parquet given, left as it was")
    for table, columns in report.columns_left_out.items():
        print(
            f"raw.{table}: columns left out (a type or a name the store cannot take): {', '.join(map(repr, columns))}"
        )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from bildsuche.cli import run

    parser = argparse.ArgumentParser(prog="seeds_loader", description="Load parquet files into the raw tables.")
    add_load_arguments(parser)
    parser.set_defaults(handler=load_command)
    return run(parser, argv)
