"""Clients on the targets of profiles.yml, configured from the same variables.

The embedded store is opened through the chdb dbt plugin's engine module,
which imports no dbt; its errors gain the application's hints here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from dbt.adapters.chdb.engine import StoreError, StoreLockedError, connect, openable

from bildsuche import config
from bildsuche.errors import StoreUnavailableError, UsageError

LOCK_HINT = f"`bildsuche serve` holds its store while it runs; {config.DB_PATH_ENV} names another store"


def _unavailable(exc: StoreError) -> StoreUnavailableError:
    hint = f" ({LOCK_HINT})" if isinstance(exc, StoreLockedError) else ""
    return StoreUnavailableError(f"{exc}{hint}")


def claim_store(path: Path, *, create: bool = False) -> Path:
    """The resolved directory of an existing embedded store that no other process holds
    (with ``create``, of a new one when there is none)."""
    try:
        store = openable(path, create=create)
    except StoreError as exc:
        raise _unavailable(exc) from exc
    if not create and not (store / "metadata").is_dir():
        raise StoreUnavailableError(f"{store} holds no embedded store (run `bildsuche demo` or dbt first)")
    return store


def open_client(target: str | None = None, *, path: Path | None = None) -> Client:
    """A clickhouse-connect client on ``target`` (default: $BILDSUCHE_TARGET or embedded)."""
    name = target or config.default_target()
    if name == "embedded":
        try:
            return connect(path or config.db_path())
        except StoreError as exc:
            raise _unavailable(exc) from exc
    if name not in config.TARGETS:
        raise UsageError(f"unknown target {name!r}; choose one of {', '.join(config.TARGETS)}")
    prefix = "CLICKHOUSE" if name == "clickhouse" else "MYSCALE"
    env = os.environ
    secure_default = "true" if name == "myscale" else "false"
    secure = env.get(f"{prefix}_SECURE", secure_default).lower() in ("1", "true", "yes")
    try:
        return clickhouse_connect.get_client(
            host=env.get(f"{prefix}_HOST", "localhost"),
            port=int(env.get(f"{prefix}_PORT", "8443" if secure else "8123")),
            username=env.get(f"{prefix}_USER", "default"),
            password=env.get(f"{prefix}_PASSWORD", ""),
            secure=secure,
        )
    except (ClickHouseError, OSError) as exc:
        raise StoreUnavailableError(f"cannot reach the {name} target: {exc}") from exc


@contextmanager
def client_for(target: str | None = None, *, path: Path | None = None) -> Iterator[Client]:
    """open_client as a context manager: the client (and, for the embedded store,
    the engine's lock on the directory) is released on exit."""
    client = open_client(target, path=path)
    try:
        yield client
    finally:
        client.close()
