"""`python -m python_embed build SOURCE --out DIR [--model M] [--limit N] [--batch-size B]`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from bildsuche import config
from bildsuche.progress import ProgressLine
from python_embed.build import CACHE_DIR
from python_embed.fetch import THUMBNAIL_QUERY, FetchConfig

DEMO_MODEL = "demo"


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        help="an Unsplash Lite .zip or folder, the tutorial's photos-all.parquet (or its folder), "
        "hf:myscale/unsplash-examples, a folder of images, or 'sample'",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for photos/conversions/failures.parquet")
    parser.add_argument(
        "--model",
        default=os.environ.get(config.MODEL_ENV, config.DEFAULT_MODEL),
        help=f"CLIP model name or directory, or '{DEMO_MODEL}' for the offline demo model "
        f"(default: ${config.MODEL_ENV} or {config.DEFAULT_MODEL})",
    )
    parser.add_argument("--limit", type=int, help="take only the first N photos (the tutorial takes 1000)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32)")
    parser.add_argument("--concurrency", type=int, default=16, help="downloads and decodes in flight (default 16)")
    parser.add_argument("--cache", type=Path, help=f"download cache folder (default OUT/{CACHE_DIR})")
    parser.add_argument(
        "--thumbnail-query", default=THUMBNAIL_QUERY, help=f"appended to photo URLs (default {THUMBNAIL_QUERY!r})"
    )
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="model precision")
    parser.add_argument("--restart", action="store_true", help="discard an unfinished build in OUT")


def resolve_model(name: str) -> str:
    if name == DEMO_MODEL:
        from python_embed.demo_model import create_demo_model

        return str(create_demo_model(config.data_dir() / "demo" / "model"))
    return name


def build_command(args: argparse.Namespace) -> int:
    from python_embed.build import BuildOptions, build
    from python_embed.embedder import ClipEmbedder

    options = BuildOptions(
        limit=args.limit,
        batch_size=args.batch_size,
        workers=args.concurrency,
        restart=args.restart,
        cache_dir=args.cache,
        fetch=FetchConfig(thumbnail_query=args.thumbnail_query),
    )
    line = ProgressLine("embedding", "photos")
    report = build(
        args.source,
        args.out,
        lambda: ClipEmbedder(resolve_model(args.model), precision=args.precision),
        options,
        progress=line.update,
    )
    failed = sum(report.failures.values())
    print(
        f"{report.photos:,} photos: {report.embedded:,} embedded now, {report.resumed:,} from an earlier run, "
        f"{report.precomputed:,} with embeddings already, {failed:,} failed; "
        f"{report.downloads:,} downloads; {report.conversions:,} conversions -> {report.out}"
    )
    for reason, count in report.failures.most_common():
        print(f"  failed {reason}: {count:,}")
    t = report.times
    print(
        f"time: {report.seconds:.1f}s (fetch {t.fetch:.1f}s and decode {t.decode:.1f}s over all workers, "
        f"embed {t.embed:.1f}s)"
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
