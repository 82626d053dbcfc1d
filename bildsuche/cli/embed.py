"""`bildsuche build` and `bildsuche query` (= `python -m python_embed build | query`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bildsuche import config
from bildsuche.cli.progress import ProgressLine
from bildsuche.dataset import CACHE_DIR
from bildsuche.errors import UsageError
from python_embed.demo_model import DEMO_MODEL, resolve_model
from python_embed.fetch import THUMBNAIL_QUERY, FetchConfig


def add_model_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--model",
        default=os.environ.get(config.MODEL_ENV, config.DEFAULT_MODEL),
        help=f"{what}, or '{DEMO_MODEL}' for the offline demo model "
        f"(default: ${config.MODEL_ENV} or {config.DEFAULT_MODEL})",
    )


def add_target_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", choices=config.TARGETS, help="profiles.yml target (default: $BILDSUCHE_TARGET or embedded)"
    )


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        help="an Unsplash Lite .zip or folder, the tutorial's photos-all.parquet (or its folder), "
        "hf:myscale/unsplash-examples, a folder of images, or 'sample' ('sample:N' for N photos)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for photos/conversions/failures.parquet")
    add_model_argument(parser, "CLIP model name or directory")
    parser.add_argument("--limit", type=int, help="take only the first N photos (the tutorial takes 1000)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32)")
    parser.add_argument("--concurrency", type=int, default=16, help="downloads and decodes in flight (default 16)")
    parser.add_argument("--cache", type=Path, help=f"download cache folder (default OUT/{CACHE_DIR})")
    parser.add_argument(
        "--thumbnail-query", default=THUMBNAIL_QUERY, help=f"appended to photo URLs (default {THUMBNAIL_QUERY!r})"
    )
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="model precision")
    parser.add_argument("--restart", action="store_true", help="discard an unfinished build in OUT")


def build_command(args: argparse.Namespace) -> int:
    from python_embed.build import BuildOptions, build
    from python_embed.embedder import ClipEmbedder, recorded_name

    model = resolve_model(args.model)
    options = BuildOptions(
        model=recorded_name(model),
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
        lambda: ClipEmbedder(model, precision=args.precision),
        options,
        progress=line.update,
    )
    failed = sum(report.failures.values())
    print(
        f"{report.photos:,} photos: {report.embedded:,} embedded now, {report.reused:,} reused from the data set "
        f"in the folder, {report.resumed:,} from an earlier run, {report.precomputed:,} with embeddings already, "
        f"{failed:,} failed ({report.retried:,} that failed before now embedded), {report.removed:,} removed; "
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


def add_query_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="name of the saved search (saving it again replaces it)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="search text, embedded by the model's text tower")
    what.add_argument("--image", help="search image: a file path or an http(s) URL")
    what.add_argument(
        "--from-csv",
        nargs="?",
        const="",
        metavar="CSV",
        help="save every row (columns name,text) of a CSV file as a text search "
        "(default: the dbt seed seeds/saved_searches.csv)",
    )
    add_model_argument(parser, "the CLIP model the photos were embedded with")
    add_target_argument(parser)
    parser.add_argument("--cache", type=Path, help="download cache for image URLs (default DATA_DIR/query-cache)")


def query_command(args: argparse.Namespace) -> int:
    from bildsuche.store import client_for
    from python_embed.embedder import ClipEmbedder
    from python_embed.fetch import Fetcher, ImageCache
    from python_embed.queries import embed_query
    from seeds_loader import save_query

    if args.from_csv is not None:
        if args.name is not None:
            raise UsageError("--from-csv takes the names from the file; leave out --name")
        return _query_from_csv(args)
    if args.name is None:
        raise UsageError("--text and --image need --name")
    embedder = ClipEmbedder(resolve_model(args.model))
    fetcher = Fetcher(ImageCache(args.cache or config.data_dir() / "query-cache"), FetchConfig(thumbnail_query=""))
    query = embed_query(embedder, name=args.name, text=args.text, image=args.image, fetcher=fetcher)
    with client_for(args.target) as client:
        save_query(client, query)
    print(
        f"saved {query.kind} search {query.name!r} ({len(query.embedding)}-d, model {query.model}) "
        "in raw.search_queries; `dbt build` answers it in analytics.search_results"
    )
    return 0


def _query_from_csv(args: argparse.Namespace) -> int:
    from bildsuche.store import client_for
    from python_embed.embedder import ClipEmbedder
    from python_embed.saved_searches import default_csv, embed_saved_searches, read_saved_searches
    from seeds_loader import save_queries

    path = Path(args.from_csv) if args.from_csv else default_csv()
    searches = read_saved_searches(path)
    embedder = ClipEmbedder(resolve_model(args.model))
    queries = embed_saved_searches(embedder, searches)
    with client_for(args.target) as client:
        save_queries(client, queries)
    print(
        f"saved {len(queries)} text searches from {path} (model {embedder.name}) in raw.search_queries: "
        f"{', '.join(q.name for q in queries)}; `dbt build` answers them in analytics.search_results"
    )
    return 0
