"""`bildsuche report`: the marts as an HTML page with pictures and a PNG contact sheet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bildsuche import config

if TYPE_CHECKING:
    from bildsuche.report import ReportResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for report.html and contact_sheet.png")
    parser.add_argument("--store", type=Path, help="embedded store directory (default: $BILDSUCHE_DB_PATH)")
    parser.add_argument("--target", choices=config.TARGETS, help="profiles.yml target (default: embedded)")
    parser.add_argument(
        "--dataset",
        type=Path,
        help="the folder `bildsuche build --out` wrote: its download cache and the model named in photos.parquet",
    )
    parser.add_argument(
        "--cache", type=Path, help="image cache (default DATASET/.bildsuche-cache, else DATA_DIR/report-cache)"
    )
    parser.add_argument("--offline", action="store_true", help="download nothing: use local files and the cache")


def print_report(result: ReportResult) -> None:
    missing = f", {len(result.missing)} photo(s) without an image" if result.missing else ""
    width, height = result.sheet_size
    print(f"report: {result.html} ({result.tiles} tiles{missing}) and {result.sheet} ({width}x{height})")
    for item in result.missing:
        print(f"  no image for {item.photo_id!r}: {item.reason}")


def command(args: argparse.Namespace) -> int:
    from bildsuche.report import make_report

    result = make_report(
        args.out, target=args.target, store=args.store, dataset=args.dataset, cache=args.cache, fetch=not args.offline
    )
    print_report(result)
    return 0
