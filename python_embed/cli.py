"""`python -m python_embed build SOURCE --out DIR [--model M] [--limit N] [--batch-size B]`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from bildsuche import config
from bildsuche.progress import ProgressLine

DEMO_MODEL = "demo"


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a folder of images, or 'sample' for the built-in sample")
    parser.add_argument("--out", type=Path, required=True, help="folder for photos/conversions/failures.parquet")
    parser.add_argument(
        "--model",
        default=os.environ.get(config.MODEL_ENV, config.DEFAULT_MODEL),
        help=f"CLIP model name or directory, or '{DEMO_MODEL}' for the offline demo model "
        f"(default: ${config.MODEL_ENV} or {config.DEFAULT_MODEL})",
    )
    parser.add_argument("--limit", type=int, help="embed only the first N photos")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32)")


def resolve_model(name: str) -> str:
    if name == DEMO_MODEL:
        from python_embed.demo_model import create_demo_model

        return str(create_demo_model(config.data_dir() / "demo" / "model"))
    return name


def build_command(args: argparse.Namespace) -> int:
    from python_embed.build import build
    from python_embed.embedder import ClipEmbedder

    embedder = ClipEmbedder(resolve_model(args.model))
    line = ProgressLine("embedding", "photos")
    report = build(args.source, args.out, embedder, limit=args.limit, batch_size=args.batch_size, progress=line.update)
    print(
        f"{report.embedded:,} photos embedded, {report.failed:,} failed (see failures.parquet), "
        f"{report.conversions:,} conversions -> {report.out}"
    )
    if report.model_is_demo:
        print("note: embeddings from the randomly initialised demo CLIP model, not a trained one")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from bildsuche.cli import run

    parser = argparse.ArgumentParser(prog="python_embed", description="Embed photos with CLIP into parquet files.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    build_parser = sub.add_parser("build", help="photos -> CLIP embeddings -> photos/conversions/failures.parquet")
    add_build_arguments(build_parser)
    build_parser.set_defaults(handler=build_command)
    return run(parser, argv)
