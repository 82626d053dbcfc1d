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
from bildsuche.sqltext import string_literal

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


# A cluster (CLICKHOUSE_CLUSTER) is checked before any DDL goes ON CLUSTER: a name the server does not
# know fails the first statement with an engine message, and a shard whose replicas are all down holds
# every ON CLUSTER statement until distributed_ddl_task_timeout (3 minutes by default), then leaves it
# done on some nodes only.  Both are refused by name, with nothing changed.
def check_cluster(client: Client, cluster: str) -> None:
    """Raise UsageError when the server does not define ``cluster``, StoreUnavailableError when a
    shard of it answers on none of its replicas."""
    shards = client.query(
        "SELECT shard_num, arrayStringConcat(groupArray(concat(host_name, ':', toString(port))), ', ') "
        "FROM system.clusters WHERE cluster = {cluster:String} GROUP BY shard_num ORDER BY shard_num",
        parameters={"cluster": cluster},
    ).result_rows
    if not shards:
        known = [str(r[0]) for r in client.query("SELECT DISTINCT cluster FROM system.clusters ORDER BY 1").result_rows]
        raise UsageError(
            f"cluster {cluster!r} is not defined on the server (its clusters: {', '.join(known) or 'none'}): "
            "set CLICKHOUSE_CLUSTER to one of them, or leave it empty for a single server; nothing was changed"
        )
    # One replica of each shard is asked; a shard none of whose replicas answers is skipped, not an error.
    answering = {
        int(r[0])
        for r in client.query(
            f"SELECT DISTINCT _shard_num FROM cluster({string_literal(cluster)}, system.one) "
            "SETTINGS skip_unavailable_shards = 1"
        ).result_rows
    }
    for shard, hosts in shards:
        if int(shard) not in answering:
            raise StoreUnavailableError(
                f"shard {shard} of cluster {cluster!r} does not answer on any replica ({hosts}): its photos would "
                "be missing, and DDL ON CLUSTER would wait for it; bring a replica of it back; nothing was changed"
            )
