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
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from bildsuche.errors import StoreUnavailableError
from bildsuche.sqltext import identifier, string_literal
from seeds_loader.schema import RAW_DATABASE

COMMIT_TABLE = "load__commit"
STAGING_SUFFIX = "__loading"
COMMENT_PREFIX = "bildsuche load "


def qualified(name: str) -> str:
    return f"{identifier(RAW_DATABASE)}.{identifier(name)}"


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


def write_record(client: Client, load_id: str, tables: list[str]) -> None:
    """The commit point: one CREATE TABLE, so the record exists whole or not at all."""
    comment = json.dumps({"load": load_id, "tables": tables})
    client.command(
        f"CREATE TABLE {qualified(COMMIT_TABLE)} (load String) ENGINE = Null COMMENT {string_literal(comment)}"
    )


def swap_in(client: Client, name: str, load_id: str) -> None:
    """Put raw.<name>__loading of load ``load_id`` in raw.<name>'s place; safe to repeat."""
    staging_name = name + STAGING_SUFFIX
    staged = stamp_of(client, staging_name)
    if staged is not None and staged.load_id == load_id:
        if exists(client, name):
            client.command(f"EXCHANGE TABLES {qualified(staging_name)} AND {qualified(name)}")
        else:
            client.command(f"RENAME TABLE {qualified(staging_name)} TO {qualified(name)}")
    live = stamp_of(client, name)
    if live is None or live.load_id != load_id:
        raise StoreUnavailableError(
            f"an interrupted load cannot be finished: raw.{staging_name} is gone; load the set again with "
            "--full-refresh, which replaces every table"
        )
    # After the exchange the staging name holds the replaced table.
    client.command(f"DROP TABLE IF EXISTS {qualified(staging_name)}")
