"""The `bildsuche` command line: one library call per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bildsuche import config
from bildsuche.errors import BildsucheError, UsageError
from bildsuche.progress import end_unfinished_line

if TYPE_CHECKING:
    from bildsuche.demo import DemoResult
    from bildsuche.report import ReportResult

Handler = Callable[[argparse.Namespace], int]


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, dispatch to the subcommand's handler, report typed errors in one line."""
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BildsucheError as exc:
        end_unfinished_line()
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        end_unfinished_line()
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


def _print_demo(result: DemoResult) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_colwidth", 60, "display.max_rows", 200):
        for name, frame in result.marts.items():
            print(f"\n== analytics.{name} ({len(frame)} rows)")
            print(frame.to_string(index=False) if len(frame) else "(empty)")
    print()
    print(f"store: {result.store}  ({result.photos} photos, {result.conversions} conversions)")
    if result.model_is_demo:
        print(
            "note: embeddings came from a small randomly initialised demo CLIP model (real transformers\n"
            "      classes, random weights), so neighbours reflect colour and layout, not meaning.\n"
            "      For real CLIP embeddings run `bildsuche demo --model openai/clip-vit-base-patch32`\n"
            "      (needs the Hugging Face hub, or a local copy of the model)."
        )
    else:
        print(f"model: {result.model}")
    print(f"explore further: BILDSUCHE_DB_PATH={result.store} dbt build --vars '{{top_k: 5}}'")


def cmd_demo(args: argparse.Namespace) -> int:
    from bildsuche.demo import run_demo

    def step(msg: str) -> None:
        print(f"-- {msg}", file=sys.stderr, flush=True)

    result = run_demo(
        store=args.store,
        model=args.model,
        photos=args.photos,
        top_k=args.top_k,
        target_photo_id=args.target_photo_id,
        step=step,
        dbt_quiet=args.quiet,
    )
    _print_demo(result)
    if args.report:
        from bildsuche.report import make_report

        # The sample's photos are local files: nothing to download.
        _print_report(make_report(args.report, store=result.store, dataset=result.dataset, fetch=False))
    return 0


def _print_report(result: ReportResult) -> None:
    missing = f", {len(result.missing)} photo(s) without an image" if result.missing else ""
    width, height = result.sheet_size
    print(f"report: {result.html} ({result.tiles} tiles{missing}) and {result.sheet} ({width}x{height})")
    for item in result.missing:
        print(f"  no image for {item.photo_id!r}: {item.reason}")


def cmd_report(args: argparse.Namespace) -> int:
    from bildsuche.report import make_report

    result = make_report(
        args.out, target=args.target, store=args.store, dataset=args.dataset, cache=args.cache, fetch=not args.offline
    )
    _print_report(result)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from seeds_loader.cli import load_command

    return load_command(args)


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from bildsuche.serve import Limits, ReadOnlyEngine, make_server

    if not 1 <= args.ef_search <= 100_000:
        raise UsageError(f"--ef-search must be a whole number from 1 to 100000, got {args.ef_search}")
    limits = Limits(
        max_execution_time=args.max_execution_time,
        max_result_rows=args.max_result_rows,
        max_result_bytes=args.max_result_bytes,
        max_memory_usage=args.max_memory_usage,
        max_concurrent=args.max_concurrent,
        ef_search=args.ef_search,
    )
    engine = ReadOnlyEngine(args.path or config.db_path(), limits)
    password = args.password if args.password is not None else os.environ.get("BILDSUCHE_SERVE_PASSWORD")
    try:
        server = make_server(engine, args.host, args.port, password, args.timeout)
    except OSError as exc:
        engine.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(
        f"serving {engine.path} read-only on http://{host}:{port} (ClickHouse HTTP interface); Ctrl-C stops", flush=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.close()
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from python_embed.cli import build_command

    return build_command(args)


def build_parser() -> argparse.ArgumentParser:
    from python_embed.cli import add_build_arguments
    from seeds_loader.cli import add_load_arguments

    parser = argparse.ArgumentParser(prog="bildsuche", description="Image-similarity analytics on ClickHouse with dbt.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="offline end-to-end run on the embedded store; prints the marts")
    demo.add_argument(
        "--store", type=Path, help="embedded store directory (default: $BILDSUCHE_DB_PATH or data/demo.chdb)"
    )
    demo.add_argument("--model", help="CLIP model name or directory (default: a generated demo model)")
    demo.add_argument("--photos", type=int, default=320, help="sample photos to generate (default 320)")
    demo.add_argument("--top-k", type=int, default=10, help="neighbours per target (default 10)")
    demo.add_argument("--target-photo-id", help="target photo (default: drawn reproducibly)")
    demo.add_argument("--quiet", action="store_true", help="hide dbt's log lines")
    demo.add_argument("--report", type=Path, metavar="DIR", help="also write the HTML report and contact sheet to DIR")
    demo.set_defaults(handler=cmd_demo)

    build = sub.add_parser("build", help="embed photos into parquet files (= python -m python_embed build)")
    add_build_arguments(build)
    build.set_defaults(handler=cmd_build)

    serve = sub.add_parser("serve", help="read-only ClickHouse HTTP endpoint over the embedded store, for BI tools")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8123, help="port (default 8123; 0 picks a free one)")
    serve.add_argument("--path", type=Path, help="embedded store (default: $BILDSUCHE_DB_PATH)")
    serve.add_argument("--password", help="require this password (default: $BILDSUCHE_SERVE_PASSWORD, else none)")
    serve.add_argument("--max-execution-time", type=float, default=30.0, help="seconds per query (default 30)")
    serve.add_argument("--max-result-rows", type=int, default=1_000_000, help="rows per result (default 1000000)")
    serve.add_argument("--max-result-bytes", type=int, default=256 << 20, help="bytes per result (default 256 MiB)")
    serve.add_argument(
        "--max-memory-usage", type=int, default=2 << 30, help="bytes of memory per query (default 2 GiB)"
    )
    serve.add_argument("--max-concurrent", type=int, default=4, help="queries run at once (default 4)")
    serve.add_argument(
        "--ef-search",
        type=int,
        default=256,
        help="candidates a vector index search keeps unless the client sets "
        "hnsw_candidate_list_size_for_search (default 256; about 1024 for a million photos)",
    )
    serve.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a client may take to send a request or idle (default 30)"
    )
    serve.set_defaults(handler=cmd_serve)

    report = sub.add_parser("report", help="the marts as an HTML page with pictures and a PNG contact sheet")
    report.add_argument("--out", type=Path, required=True, help="folder for report.html and contact_sheet.png")
    report.add_argument("--store", type=Path, help="embedded store directory (default: $BILDSUCHE_DB_PATH)")
    report.add_argument("--target", choices=config.TARGETS, help="profiles.yml target (default: embedded)")
    report.add_argument(
        "--dataset",
        type=Path,
        help="the folder `python_embed build --out` wrote: its download cache and the model named in photos.parquet",
    )
    report.add_argument(
        "--cache", type=Path, help="image cache (default DATASET/.bildsuche-cache, else DATA_DIR/report-cache)"
    )
    report.add_argument("--offline", action="store_true", help="download nothing: use local files and the cache")
    report.set_defaults(handler=cmd_report)

    load = sub.add_parser("load", help="load photos/conversions parquet into the raw tables (= python -m seeds_loader)")
    add_load_arguments(load)
    load.set_defaults(handler=cmd_load)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
