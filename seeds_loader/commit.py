"""Swapping a loaded set in: every staged table, or none of them.

ClickHouse exchanges two tables atomically (EXCHANGE TABLES, one pair per
statement) but has no transaction over several statements outside its
experimental, Keeper-backed transactions, which the embedded engine does not
run.  So a load commits in two steps: once every `<table>__loading` table
holds all its rows, one statement creates the commit record
(`raw.load__commit`, naming the load and its tables); then each table is
exchanged, and the record dropped.  A load killed after the record exists is
finished by the next load, before anything else (roll forward), and dbt
refuses to build on raw tables while the record is there (macro
refuse_unfinished_load): a set is seen whole or not at all.

Every staged table carries its load's id in its comment, which tells,
table by table, whether the exchange has happened yet.

On a cluster the record and every statement go ON CLUSTER, and what is
exchanged is the shards' local tables, which carry the stamps: the
Distributed table raw.<name> reads raw.<name>_local by name, so it reads the
new rows once the local tables are exchanged (it is then made anew, with
the loaded structure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from bildsuche.errors import StoreUnavailableError
from bildsuche.sqltext import string_literal
from seeds_loader.schema import LOCAL_SUFFIX, RAW_DATABASE, distributed_ddl, on_cluster, qualified

COMMIT_TABLE = "load__commit"
STAGING_SUFFIX = "__loading"
COMMENT_PREFIX = "bildsuche load "


def exists(client: Client, name: str) -> bool:
    return bool(client.command(f"EXISTS TABLE {qualified(name)}"))


@dataclass(frozen=True)
class TableStamp:
    """What a load records in the comment of each table it stages."""

    load_id: str
    digest: str

    def comment(self) -> str:
        return COMMENT_PREFIX + json.dumps({"load": self.load_id, "sha256": self.digest})


def stamp_of(client: Client, name: str) -> TableStamp | None:
    """The stamp in raw.<name>'s comment (None: no table, or not stamped by a load)."""
    rows = client.query(
        "SELECT comment FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": RAW_DATABASE, "name": name},
    ).result_rows
    if not rows or not str(rows[0][0]).startswith(COMMENT_PREFIX):
        return None
    try:
        fields = json.loads(str(rows[0][0])[len(COMMENT_PREFIX) :])
        return TableStamp(str(fields["load"]), str(fields["sha256"]))
    except (ValueError, KeyError, TypeError):
        return None


def pending(client: Client) -> tuple[str, list[str]] | None:
    """(load id, tables) of a load that committed but did not finish its swaps, or None."""
    rows = client.query(
        "SELECT comment FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": RAW_DATABASE, "name": COMMIT_TABLE},
    ).result_rows
    if not rows:
        return None
    record = json.loads(str(rows[0][0]))
    return str(record["load"]), [str(t) for t in record["tables"]]


def write_record(client: Client, load_id: str, tables: list[str], cluster: str = "") -> None:
    """The commit point: one CREATE TABLE, so the record exists whole or not at all."""
    comment = json.dumps({"load": load_id, "tables": tables})
    client.command(
        f"CREATE TABLE {qualified(COMMIT_TABLE)}{on_cluster(cluster)} (load String) ENGINE = Null "
        f"COMMENT {string_literal(comment)}"
    )


def drop_record(client: Client, cluster: str = "") -> None:
    client.command(f"DROP TABLE IF EXISTS {qualified(COMMIT_TABLE)}{on_cluster(cluster)}")


def data_name(name: str, cluster: str) -> str:
    """The table holding the rows of a loaded table raw.<name> (all of them are photo-keyed)."""
    return name + LOCAL_SUFFIX if cluster else name


def swap_in(client: Client, name: str, load_id: str, cluster: str = "") -> None:
    """Put raw.<name>__loading of load ``load_id`` in raw.<name>'s place; safe to repeat."""
    staging_name = name + STAGING_SUFFIX
    staging, live_name = data_name(staging_name, cluster), data_name(name, cluster)
    staged = stamp_of(client, staging)
    on = on_cluster(cluster)
    if staged is not None and staged.load_id == load_id:
        if exists(client, live_name):
            client.command(f"EXCHANGE TABLES {qualified(staging)} AND {qualified(live_name)}{on}")
        else:
            client.command(f"RENAME TABLE {qualified(staging)} TO {qualified(live_name)}{on}")
    live = stamp_of(client, live_name)
    if live is None or live.load_id != load_id:
        raise StoreUnavailableError(
            f"an interrupted load cannot be finished: raw.{staging} is gone; load the set again with "
            "--full-refresh, which replaces every table"
        )
    if cluster:
        client.command(distributed_ddl(name, live_name, cluster))
        client.command(f"DROP TABLE IF EXISTS {qualified(staging_name)}{on}")
    # After the exchange the staging name holds the replaced table.
    client.command(f"DROP TABLE IF EXISTS {qualified(staging)}{on}")
