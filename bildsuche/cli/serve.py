"""`bildsuche serve`: ClickHouse's HTTP interface over the embedded store (readers, and the writer)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from bildsuche import config
from bildsuche.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8123, help="port (default 8123; 0 picks a free one)")
    parser.add_argument("--path", type=Path, help="embedded store (default: $BILDSUCHE_DB_PATH)")
    parser.add_argument(
        "--password", help="password of user default (read-only) (default: $BILDSUCHE_SERVE_PASSWORD, else none)"
    )
    parser.add_argument(
        "--writer-password",
        help="add user writer, who may write the store (dbt --target clickhouse, seeds_loader), with this password "
        "(default: $BILDSUCHE_SERVE_WRITER_PASSWORD, else no writer)",
    )
    parser.add_argument(
        "--log", metavar="FILE|-", help="one line per request to FILE (appended) or - (standard output); "
        "the writer's requests go to standard error when there is no log"
    )  # fmt: skip
    parser.add_argument(
        "--pictures",
        metavar="DIR",
        type=Path,
        action="append",
        default=[],
        help="hand out thumbnails of the photos found in DIR (a data set folder with its download cache, or an "
        "image folder) at /photos/<photo_id>.jpg; repeatable",
    )
    parser.add_argument("--max-execution-time", type=float, default=30.0, help="seconds per query (default 30)")
    parser.add_argument("--max-result-rows", type=int, default=1_000_000, help="rows per result (default 1000000)")
    parser.add_argument("--max-result-bytes", type=int, default=256 << 20, help="bytes per result (default 256 MiB)")
    parser.add_argument(
        "--max-memory-usage", type=int, default=2 << 30, help="bytes of memory per query (default 2 GiB)"
    )
    parser.add_argument("--max-concurrent", type=int, default=4, help="queries run at once (default 4)")
    parser.add_argument(
        "--ef-search",
        type=int,
        help="candidates a vector index search keeps unless the client sets "
        "hnsw_candidate_list_size_for_search (default: var hnsw_ef_search of dbt_project.yml; "
        "about 1024 for a million photos)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a client may take to send a request or idle (default 30)"
    )


@contextlib.contextmanager
def _log_stream(target: str | None) -> Iterator[TextIO | None]:
    if target is None:
        yield None
    elif target == "-":
        yield sys.stdout
    else:
        try:
            stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 (held for the server's life)
        except OSError as exc:
            raise UsageError(f"cannot write the log {target}: {exc.strerror}") from exc
        with stream:
            yield stream


def command(args: argparse.Namespace) -> int:
    from bildsuche.serve import Accounts, Limits, Pictures, QueryLog, StoreEngine, make_server

    ef_search = config.default_ef_search() if args.ef_search is None else args.ef_search
    if not 1 <= ef_search <= 100_000:
        raise UsageError(f"--ef-search must be a whole number from 1 to 100000, got {ef_search}")
    limits = Limits(
        max_execution_time=args.max_execution_time,
        max_result_rows=args.max_result_rows,
        max_result_bytes=args.max_result_bytes,
        max_memory_usage=args.max_memory_usage,
        max_concurrent=args.max_concurrent,
        ef_search=ef_search,
    )
    password = args.password if args.password is not None else os.environ.get("BILDSUCHE_SERVE_PASSWORD")
    writer_password = args.writer_password
    if writer_password is None:
        writer_password = os.environ.get("BILDSUCHE_SERVE_WRITER_PASSWORD") or None
    if writer_password is not None and not writer_password:
        raise UsageError("--writer-password must not be empty: the writer may change the store")
    for folder in args.pictures:
        if not folder.is_dir():
            raise UsageError(f"--pictures {folder}: no such folder")
    accounts = Accounts(password, writer_password)
    with _log_stream(args.log) as stream:
        # With a writer, serve may start on a new store for the writer to fill (seeds_loader, dbt).
        engine = StoreEngine(args.path or config.db_path(), limits, create=writer_password is not None)
        pictures = Pictures(args.pictures, engine.photo_url) if args.pictures else None
        try:
            server = make_server(
                engine, accounts, args.host, args.port, timeout=args.timeout, log=QueryLog(stream), pictures=pictures
            )
        except OSError as exc:
            engine.close()
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
        host, port = str(server.server_address[0]), int(server.server_address[1])
        users = "default (read-only)" + (", writer" if writer_password else "")
        print(
            f"serving {engine.path} on http://{host}:{port} (ClickHouse HTTP interface), users {users}; Ctrl-C stops",
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            engine.close()
    return 0
