"""A ClickHouse cluster of 2 shards x 2 replicas as dbt and the loader see it, emulated on one embedded engine.

Every statement sent to the cluster is recorded as sent, then run on the embedded store as one
replica of one shard would run its part: `ON CLUSTER` dropped, Replicated engines made plain,
a Distributed table made a write-through Buffer over its local table (inserts go straight to the
local table, reads read it), SYSTEM SYNC REPLICA a no-op, `cluster()`/`clusterAllReplicas()`
over a system table read the local one, and `system.clusters` and the shard probe read the
emulated topology.  The recording
is what the tests check (engines, ON CLUSTER, sharding keys, index DDL); running it proves the
statements form a working sequence and give the single server's answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CLUSTER = "bildsuche_2x2"
SHARDS = {1: ("ch-s1-r1", "ch-s1-r2"), 2: ("ch-s2-r1", "ch-s2-r2")}
EMULATION_DB = "emulated_cluster"
METADATA_TABLES = ("system.tables", "system.columns", "system.data_skipping_indices")

ON_CLUSTER = re.compile(r"\s+on\s+cluster\s+(\"[^\"]*\"|'[^']*'|`[^`]*`|\w+)", re.IGNORECASE)
REPLICATED = re.compile(r"\bReplicated(\w*MergeTree)\(\s*'[^']*'\s*,\s*'[^']*'\s*,?\s*")
SYNC_REPLICA = re.compile(r"^\s*(?:/\*.*?\*/\s*)?system\s+sync\s+replica\b", re.I | re.S)
DDL = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)?(create|alter|drop|rename|exchange|optimize|delete|truncate|system)\b", re.I | re.S
)


def call_arguments(sql: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose '(' is at ``start``, and the index after its ')'."""
    depth, args, current, quote = 0, [], "", ""
    for i in range(start, len(sql)):
        ch = sql[i]
        if quote:
            current += ch
            if ch == quote and sql[i - 1] != "\\":
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(current.strip())
                return [a for a in args if a], i + 1
        elif ch == "," and depth == 1:
            args.append(current.strip())
            current = ""
            continue
        current += ch
    raise ValueError(f"unbalanced call in {sql[start : start + 200]!r}")


def replace_calls(sql: str, function: str, replace: Any) -> str:
    """``sql`` with every call of ``function`` replaced by ``replace(arguments)``."""
    pattern = re.compile(rf"\b{function}\(")
    out, pos = "", 0
    while (found := pattern.search(sql, pos)) is not None:
        args, end = call_arguments(sql, found.end() - 1)
        out += sql[pos : found.start()] + replace(args)
        pos = end
    return out + sql[pos:]


def unquote(text: str) -> str:
    return text.strip().strip("'\"`")


@dataclass
class EmulatedCluster:
    """The cluster's name as the servers know it, which shards answer, and every statement sent."""

    name: str = CLUSTER
    down: tuple[int, ...] = ()
    statements: list[str] = field(default_factory=list)
    # The settings dbt-clickhouse gives its session (profiles.yml's custom_settings among them).
    session_settings: dict[str, Any] = field(default_factory=dict)

    def ddl(self) -> list[str]:
        return [s for s in self.statements if DDL.match(s)]

    def setup(self, client: Any) -> None:
        client.command(f"CREATE DATABASE IF NOT EXISTS {EMULATION_DB}")
        client.command(
            f"CREATE OR REPLACE TABLE {EMULATION_DB}.clusters (cluster String, shard_num UInt32, replica_num UInt32,"
            " host_name String, port UInt16) ENGINE = MergeTree ORDER BY tuple()"
        )
        rows = ", ".join(
            f"('{self.name}', {shard}, {replica + 1}, '{host}', 9000)"
            for shard, hosts in SHARDS.items()
            for replica, host in enumerate(hosts)
        )
        client.command(f"INSERT INTO {EMULATION_DB}.clusters VALUES {rows}")
        client.command(
            f"CREATE OR REPLACE TABLE {EMULATION_DB}.one (_shard_num UInt32) ENGINE = MergeTree ORDER BY tuple()"
        )
        answering = [s for s in SHARDS if s not in self.down]
        client.command(f"INSERT INTO {EMULATION_DB}.one VALUES " + ", ".join(f"({s})" for s in answering))

    def rewrite(self, sql: str) -> str:
        """``sql`` as one replica of one shard runs its part of it."""
        if SYNC_REPLICA.match(sql):
            return "SELECT 1"  # the one replica here is always in sync with itself
        sql = ON_CLUSTER.sub("", sql)
        sql = REPLICATED.sub(r"\1(", sql)
        sql = replace_calls(sql, "Distributed", self._buffer)
        for function in ("clusterAllReplicas", "cluster"):
            sql = replace_calls(sql, function, self._local_system_table)
        return re.sub(r"\bsystem\.clusters\b", f"{EMULATION_DB}.clusters", sql)

    def _buffer(self, args: list[str]) -> str:
        # A Buffer that never buffers (every block is over its limits of 0): writes land in the local table.
        _, database, table, *_ = (unquote(a) for a in args)
        return f"Buffer('{database}', '{table}', 1, 0, 0, 0, 0, 0, 0)"

    def _local_system_table(self, args: list[str]) -> str:
        """A system table of every node: metadata as each of the four nodes has it (DDL goes
        ON CLUSTER), data (parts, mutations) as the one shard that holds every row here has it."""
        name, table = unquote(args[0]), args[1].strip()
        if not table.startswith("system."):
            raise ValueError(f"the emulation reads system tables of the cluster only, not {table}")
        if name != self.name:  # the server would refuse it: let the engine do so
            return f"cluster('{name}', {table})"
        if table == "system.one":
            return f"{EMULATION_DB}.one"
        shards = [s for s in SHARDS for _ in SHARDS[s]] if table in METADATA_TABLES else [1]
        return f"(SELECT *, shard AS _shard_num FROM {table} ARRAY JOIN {shards} AS shard)"

    def take(self, sql: str) -> str:
        self.statements.append(sql)
        return self.rewrite(sql)

    def client(self, inner: Any) -> ClusterClient:
        return ClusterClient(self, inner)


class ClusterClient:
    """A clickhouse-connect client whose statements go to the emulated cluster."""

    def __init__(self, cluster: EmulatedCluster, inner: Any) -> None:
        object.__setattr__(self, "_cluster", cluster)
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.query(self._cluster.take(sql), *args, **kwargs)

    def command(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.command(self._cluster.take(sql), *args, **kwargs)

    def query_arrow(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.query_arrow(self._cluster.take(sql), *args, **kwargs)

    def insert_arrow(self, table: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        self._cluster.statements.append(f"INSERT INTO {table} FORMAT Arrow")
        return self._inner.insert_arrow(table, data, *args, **kwargs)


@contextmanager
def dbt_on(cluster: EmulatedCluster | None, store: Path, requested: str | None = None) -> Iterator[None]:
    """dbt's `clickhouse` target (dbt-clickhouse's HTTP client) on ``store``, through ``cluster``
    (CLICKHOUSE_CLUSTER set to ``requested``, by default its name), or as a single server when
    ``cluster`` is None."""
    from dbt.adapters.chdb.engine import connect
    from dbt.adapters.clickhouse.dbclient import ChClientWrapper
    from dbt.adapters.clickhouse.httpclient import ChHttpClient

    def create(wrapper: Any, credentials: Any) -> Any:
        # dbt-clickhouse remembers, per process and by name only, which databases exist: each store here is new
        ChClientWrapper.database_dropped(wrapper, wrapper.database)
        inner = connect(store, settings=wrapper._conn_settings)
        if cluster is None:
            return inner
        cluster.session_settings.update(wrapper._conn_settings)
        return cluster.client(inner)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ChHttpClient, "_create_client", create)
        patch.setenv("BILDSUCHE_TARGET", "clickhouse")
        patch.setenv("CLICKHOUSE_CLUSTER", requested or (cluster.name if cluster else ""))
        yield
