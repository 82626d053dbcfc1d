"""`bildsuche serve`: the read-only ClickHouse HTTP endpoint over the embedded store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bildsuche import config
from bildsuche.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8123, help="port (default 8123; 0 picks a free one)")
    parser.add_argument("--path", type=Path, help="embedded store (default: $BILDSUCHE_DB_PATH)")
    parser.add_argument("--password", help="require this password (default: $BILDSUCHE_SERVE_PASSWORD, else none)")
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


def command(args: argparse.Namespace) -> int:
    from bildsuche.serve import Limits, ReadOnlyEngine, make_server

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
