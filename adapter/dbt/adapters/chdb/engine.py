"""Open the embedded ClickHouse engine (chDB) behind a clickhouse-connect client.

chDB hosts one engine per process and locks the store directory against other
processes.  The engine's own error for a locked store says nothing useful
("Error initializing EmbeddedServer"), so a failed open is diagnosed here and
turned into :class:`StoreLockedError` naming the directory and the holder.

This module imports no dbt: programs other than dbt open stores with it too.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

STATUS_FILE = "status"


class StoreError(RuntimeError):
    """The embedded store could not be opened."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store."""

    def __init__(self, store: Path, pid: int) -> None:
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"the embedded store {store} is open in {holder}; chDB allows one process per store: "
            "stop that process and try again, or use another store directory"
        )
        self.store, self.pid = store, pid


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """The absolute, symlink-free store directory (chDB compares paths literally)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def dsn_for(path: str | os.PathLike[str]) -> str:
    return f"chdb://{resolve_path(path)}"


def unusable_path(store: Path) -> str | None:
    """Why the engine cannot open ``store`` as named, or None.

    chDB reads everything after a '?' in its path as connection options, so a
    directory named 'data?x' would silently become 'data'.
    """
    if "?" in str(store):
        return f"the embedded store path {store} holds a '?', which the engine reads as the start of its options"
    return None


def lock_holder(store: Path) -> int | None:
    """The pid of another process holding the store's lock (0 when unknown), or None."""
    status = store / STATUS_FILE
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        text = os.read(fd, 4096).decode("utf-8", "replace")
        pid = 0
        for line in text.splitlines():
            if line.startswith("PID:") and line[4:].strip().isdigit():
                pid = int(line[4:].strip())
        if pid == os.getpid():
            return None  # this process hosts the engine already; more clients may join
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            return pid
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def openable(path: str | os.PathLike[str], *, create: bool = False) -> Path:
    """The resolved store directory, checked before the engine is asked to open it
    (created first when ``create``); raises StoreError or StoreLockedError."""
    store = resolve_path(path)
    problem = unusable_path(store)
    if problem:
        raise StoreError(f"{problem}: choose a directory without one")
    if create:
        try:
            store.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the embedded store directory {store}: {exc.strerror}") from exc
    # Checked first: the engine itself reports a held lock on stderr and then
    # fails with an unrelated message.
    pid = lock_holder(store)
    if pid is not None:
        raise StoreLockedError(store, pid)
    return store


def connect(
    path: str | os.PathLike[str],
    *,
    database: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Client:
    """A client on the store at ``path``, created if missing.

    Raises StoreLockedError when another process has the store open and
    StoreError for any other failure to open it.
    """
    store = openable(path, create=True)
    try:
        # The path as a path: in a chdb:// DSN a '#' or '%' in the directory name would be read as URL syntax.
        return clickhouse_connect.get_client(
            interface="chdb", path=str(store), database=database, settings=dict(settings or {})
        )
    except ProgrammingError as exc:
        pid = lock_holder(store)
        if pid is not None:
            raise StoreLockedError(store, pid) from exc
        raise StoreError(f"cannot open the embedded store {store}: {exc}") from exc
