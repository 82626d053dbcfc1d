"""`bildsuche build`, `query` and `keywords` (= `python -m python_embed build | query | keywords`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bildsuche import config
from bildsuche.cli.progress import ProgressLine
from bildsuche.dataset import CACHE_DIR
from bildsuche.errors import UsageError
from python_embed.demo_model import DEMO_MODEL, DEMO_MODEL_NAME, model_name, resolve_model
from python_embed.demo_text_model import DEMO_TEXT_MODEL, DEMO_TEXT_MODEL_NAME
from python_embed.fetch import THUMBNAIL_QUERY, FetchConfig

if TYPE_CHECKING:
    from python_embed.text_models import TextEncoder


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
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="fetch, decode and embed as a Ray Data pipeline (the ray extra): on the Ray cluster "
        "at ADDRESS ('auto', host:port or ray://host:port), or on a Ray started here when ADDRESS is left out; "
        "the model must be readable on every node",
    )


def build_command(args: argparse.Namespace) -> int:
    from python_embed.build import BuildOptions, RayOptions, build
    from python_embed.demo_model import model_name
    from python_embed.embedder import ClipEmbedder

    model = resolve_model(args.model)
    options = BuildOptions(
        model=model_name(model),
        limit=args.limit,
        batch_size=args.batch_size,
        workers=args.concurrency,
        restart=args.restart,
        cache_dir=args.cache,
        fetch=FetchConfig(thumbnail_query=args.thumbnail_query),
        ray=RayOptions(args.ray, model, args.precision) if args.ray is not None else None,
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
    parser.add_argument(
        "--text-model",
        help="embed texts with this text model instead of the CLIP model's text tower: one trained into "
        "the photos' model's space (seeds/text_model_fits.csv), e.g. "
        "sentence-transformers/clip-ViT-B-32-multilingual-v1 for texts in 50+ languages; "
        f"'{DEMO_TEXT_MODEL}' for the offline demo one",
    )
    add_target_argument(parser)
    parser.add_argument("--cache", type=Path, help="download cache for image URLs (default DATA_DIR/query-cache)")


def _text_encoder(args: argparse.Namespace) -> TextEncoder:
    """The --text-model, refused by name before it is loaded when it does not fit --model;
    else the CLIP model's own text tower."""
    from python_embed.embedder import ClipEmbedder
    from python_embed.text_models import SentenceTransformerEncoder, check_fit, resolve_text_model, text_model_name

    if args.text_model is None:
        return ClipEmbedder(resolve_model(args.model))
    path = resolve_text_model(args.text_model)
    check_fit(text_model_name(path), _image_model(args))
    return SentenceTransformerEncoder(path)


def _image_model(args: argparse.Namespace) -> str:
    return model_name(resolve_model(args.model))


def query_command(args: argparse.Namespace) -> int:
    from bildsuche.store import client_for
    from python_embed.embedder import ClipEmbedder
    from python_embed.fetch import Fetcher, ImageCache
    from python_embed.queries import embed_query, embed_text
    from seeds_loader import save_query

    if args.from_csv is not None:
        if args.name is not None:
            raise UsageError("--from-csv takes the names from the file; leave out --name")
        return _query_from_csv(args)
    if args.name is None:
        raise UsageError("--text and --image need --name")
    if args.image is not None and args.text_model is not None:
        raise UsageError("--text-model embeds texts; an --image search uses the CLIP model (--model)")
    if args.text is not None:
        query = embed_text(_text_encoder(args), name=args.name, text=args.text, image_model=_image_model(args))
    else:
        embedder = ClipEmbedder(resolve_model(args.model))
        cache = ImageCache(args.cache or config.data_dir() / "query-cache")
        fetcher = Fetcher(cache, FetchConfig(thumbnail_query=""))
        query = embed_query(embedder, name=args.name, image=args.image, fetcher=fetcher)
    with client_for(args.target) as client:
        save_query(client, query, config.cluster_name(args.target))
    encoder = f", text model {query.text_model}" if query.text_model not in ("", query.model) else ""
    print(
        f"saved {query.kind} search {query.name!r} ({len(query.embedding)}-d, model {query.model}{encoder}) "
        "in raw.search_queries; `dbt build` answers it in analytics.search_results"
    )
    _note_demo(query.model, query.text_model)
    return 0


def _note_demo(*models: str) -> None:
    demos = [m for m in models if m in (DEMO_MODEL_NAME, DEMO_TEXT_MODEL_NAME)]
    if demos:
        print(f"note: {' and '.join(dict.fromkeys(demos))}: randomly initialised demo model(s), not trained ones")


def _query_from_csv(args: argparse.Namespace) -> int:
    from bildsuche.store import client_for
    from python_embed.saved_searches import default_csv, embed_saved_searches, read_saved_searches
    from seeds_loader import save_queries

    path = Path(args.from_csv) if args.from_csv else default_csv()
    searches = read_saved_searches(path)
    encoder = _text_encoder(args)
    queries = embed_saved_searches(encoder, searches, _image_model(args))
    with client_for(args.target) as client:
        save_queries(client, queries, config.cluster_name(args.target))
    print(
        f"saved {len(queries)} text searches from {path} (text model {encoder.name}) in raw.search_queries: "
        f"{', '.join(q.name for q in queries)}; `dbt build` answers them in analytics.search_results"
    )
    _note_demo(_image_model(args), encoder.name)
    return 0


def add_keywords_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser, "the CLIP model the photos were embedded with (its text tower embeds the keywords)")
    parser.add_argument(
        "--min-searches",
        type=int,
        help="embed keywords with at least this many downloads (default: the dbt var relevance_min_searches)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=config.DEFAULT_KEYWORD_LIMIT,
        help=f"at most this many keywords, the most searched first (default {config.DEFAULT_KEYWORD_LIMIT})",
    )
    add_target_argument(parser)


def keywords_command(args: argparse.Namespace) -> int:
    from bildsuche.store import client_for
    from python_embed.embedder import ClipEmbedder
    from python_embed.keywords import embed_keywords
    from seeds_loader.keywords import frequent_keywords, save_keyword_embeddings
    from seeds_loader.searches import check_model

    min_searches = args.min_searches
    if min_searches is None:
        min_searches = int(config.project_var("relevance_min_searches"))
    if min_searches < 1 or args.limit < 1:
        raise UsageError("--min-searches and --limit must be at least 1")
    image_model = _image_model(args)
    with client_for(args.target) as client:
        check_model(client, image_model)
        todo = frequent_keywords(client, image_model, min_searches=min_searches, limit=args.limit)
    embedded = []
    if todo.missing:
        line = ProgressLine("embedding", "keywords")
        embedded = embed_keywords(ClipEmbedder(resolve_model(args.model)), todo.missing, progress=line.update)
        with client_for(args.target) as client:
            save_keyword_embeddings(client, embedded, config.cluster_name(args.target))
    print(
        f"{len(embedded):,} keywords embedded now, {todo.cached:,} cached already (model {image_model}, "
        f"at least {min_searches} downloads) in raw.keyword_embeddings; `dbt build` compares them with the "
        "photos in analytics.keyword_search_relevance"
    )
    _note_demo(image_model)
    return 0
