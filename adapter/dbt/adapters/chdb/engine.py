"""Open the embedded ClickHouse engine (chDB) behind a clickhouse-connect client.

chDB hosts one engine per process and locks the store directory against other
processes.  The engine's own error for a locked store says nothing useful
("Error initializing EmbeddedServer"), so a failed open is diagnosed here and
turned into :class:`StoreLockedError` naming the directory and the holder.
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


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """The absolute, symlink-free store directory (chDB compares paths literally)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def dsn_for(path: str | os.PathLike[str]) -> str:
    return f"chdb://{resolve_path(path)}"


def _lock_holder(store: Path) -> str | None:
    """Describe who holds the store's lock, or None when nobody does."""
    status = store / STATUS_FILE
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            text = os.read(fd, 4096).decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith("PID:"):
                    return f"process {line.split(':', 1)[1].strip()}"
            return "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


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
    store = resolve_path(path)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the embedded store directory {store}: {exc.strerror}") from exc
    try:
        return clickhouse_connect.get_client(
            dsn=f"chdb://{store}", database=database, settings=dict(settings or {})
        )
    except ProgrammingError as exc:
        holder = _lock_holder(store)
        if holder is not None:
            raise StoreLockedError(
                f"the embedded store {store} is open in {holder}; chDB allows one process per "
                "store: stop that process (for example `bildsuche serve`) and try again, "
                "or point BILDSUCHE_DB_PATH at another directory"
            ) from exc
        raise StoreError(f"cannot open the embedded store {store}: {exc}") from exc
