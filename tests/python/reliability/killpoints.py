"""Run a bildsuche command that kills itself with SIGKILL at a chosen point.

    python -m reliability.killpoints POINT N MODULE [ARGS...]

kills the process running ``python -m MODULE ARGS`` when it reaches POINT for
the N-th time; no handler, `finally` or atexit runs, as with `kill -9`.
Points:

- download: a photo's bytes have arrived, before they reach the cache;
- shard: a checkpoint shard has been written;
- final-write: the first of the final parquet files is written beside its name, none renamed;
- final-rename: the first final file is renamed into place, the others are not;
- insert: seeds_loader has inserted a batch into a `<table>__loading` table (batches of 64 rows);
- swap: seeds_loader has swapped the first loaded table in, the others not yet;
- mid-swap: seeds_loader has run the first statement of the first table's swap, not the rest of it;
- sql-before:REGEX, sql-after:REGEX: any command (seeds_loader, dbt: ``python -m dbt.cli.main``) is
  about to send, or has had answered, its N-th SQL statement matching REGEX (case-insensitive), e.g.
  ``sql-after:ATTACH PARTITION`` or ``sql-before:optimize table``.
"""

from __future__ import annotations

import os
import re
import runpy
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(owner: Any, name: str, times: int, when: Callable[..., bool] = lambda *a, **k: True) -> None:
    """Kill the process once ``owner.name`` has returned ``times`` times (counting calls where ``when``)."""
    original = getattr(owner, name)
    count = 0
    lock = threading.Lock()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            with lock:
                count += 1
                if count >= times:
                    _die()
        return result

    setattr(owner, name, wrapper)


def _final(tables: Any) -> bool:
    return any(path.name == "photos.parquet" for path in tables)


def _statements(pattern: str, times: int, after: bool) -> None:
    """Die at the N-th statement matching ``pattern``, before it is sent or once it is answered."""
    from clickhouse_connect.driver._backendclient import SyncBackendClient
    from clickhouse_connect.driver.client import Client

    wanted = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    count = 0
    lock = threading.Lock()

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, sql: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal count
            matches, due = bool(wanted.search(str(sql))), False
            if matches:
                with lock:
                    count += 1
                    due = count >= times
                if due and not after:
                    _die()
            result = original(self, sql, *args, **kwargs)
            if due and after:
                _die()
            return result

        return wrapper

    # The embedded engine's client (a SyncBackendClient) answers `command` itself, `query` through Client.
    for owner in (Client, SyncBackendClient):
        for name in ("command", "query", "query_arrow"):
            if name in vars(owner):
                setattr(owner, name, wrap(vars(owner)[name]))


def install(point: str, times: int) -> None:
    kind, _, pattern = point.partition(":")
    if kind in ("sql-before", "sql-after"):
        _statements(pattern, times, after=kind == "sql-after")
    elif point == "download":
        from python_embed.fetch import Fetcher

        _after(Fetcher, "_download", times)
    elif point == "shard":
        from python_embed.checkpoint import Checkpoint

        _after(Checkpoint, "append", times)
    elif point in ("final-write", "final-rename"):
        from bildsuche import files
        from python_embed import writer

        original = writer.write_all

        def write_all(tables: Any) -> None:
            if _final(tables):
                if point == "final-write":
                    _after(writer.pq, "write_table", times)
                else:
                    _after(files.os, "replace", times)
            original(tables)

        writer.write_all = write_all
        import python_embed.build as build_module

        build_module.write_all = write_all
    elif point == "insert":
        from clickhouse_connect.driver.client import Client

        from seeds_loader import loader

        loader.BATCH_ROWS.clear()
        loader.DEFAULT_BATCH_ROWS = 64
        _after(Client, "insert_arrow", times)
    elif point == "swap":
        from seeds_loader import loader

        _after(loader, "_swap_in", times)
    elif point == "mid-swap":
        from seeds_loader import loader

        swap_in = loader._swap_in

        def swap_then_die(client: Any, *args: Any, **kwargs: Any) -> Any:
            # Inside the swap: the client dies after `times` statements that change something.
            _after(
                client, "command", times, when=lambda sql, *a, **k: not str(sql).lstrip().upper().startswith("EXISTS")
            )
            return swap_in(client, *args, **kwargs)

        loader._swap_in = swap_then_die
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main() -> None:
    point, times, module, *args = sys.argv[1:]
    install(point, int(times))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
