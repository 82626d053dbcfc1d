"""Catalog rows of parameterized views, which system.columns does not list.

A parameterized view (`create view v as select … {name:Type} …`) has no fixed
structure until its parameters are bound, so dbt-clickhouse's catalog query
(system.columns joined with system.tables) leaves it out of `dbt docs`.  Its
columns are read here from the analyzer: EXPLAIN QUERY TREE of a call with
every parameter at its type's default value names the projection's columns
and types without running the view (a real call would run its scalar
subqueries, which may need a real parameter value).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.binding import format_str, quote_identifier

PROJECTION_HEADER = "PROJECTION COLUMNS"
CATALOG_COLUMNS = (
    "table_database",
    "table_schema",
    "table_name",
    "table_type",
    "table_comment",
    "column_name",
    "column_index",
    "column_type",
    "column_comment",
    "table_owner",
)


@dataclass(frozen=True)
class ParameterizedView:
    schema: str
    name: str
    comment: str
    parameters: tuple[tuple[str, str], ...]  # (name, ClickHouse type)


VIEWS_SQL = (
    "select database, name, comment, "
    "arrayMap(p -> tupleElement(p, 'name'), parameterized_view_parameters) as names, "
    "arrayMap(p -> tupleElement(p, 'type'), parameterized_view_parameters) as types "
    "from system.tables where notEmpty(parameterized_view_parameters) and has({schemas:Array(String)}, database) "
    "order by database, name"
)


def parse_views(rows: Iterable[Sequence[Any]]) -> list[ParameterizedView]:
    return [
        ParameterizedView(str(schema), str(name), str(comment or ""), tuple(zip(names, types, strict=True)))
        for schema, name, comment, names, types in rows
    ]


def parameterized_views(client: Any, schemas: Iterable[str]) -> list[ParameterizedView]:
    """The parameterized views of ``schemas`` (a clickhouse-connect client)."""
    listed = sorted(set(schemas))
    if not listed:
        return []
    return parse_views(client.query(VIEWS_SQL, parameters={"schemas": listed}).result_rows)


def explain_sql(view: ParameterizedView) -> str:
    arguments = ", ".join(
        f"{quote_identifier(name)} = defaultValueOfTypeName({format_str(type_name)})"
        for name, type_name in view.parameters
    )
    return (
        f"explain query tree select * from {quote_identifier(view.schema)}.{quote_identifier(view.name)}({arguments})"
    )


def view_columns(client: Any, view: ParameterizedView) -> list[tuple[str, str]]:
    return projection_columns(str(row[0]) for row in client.query(explain_sql(view)).result_rows)


def split_column(entry: str) -> tuple[str, str]:
    """``name Type`` as EXPLAIN prints a projection column: the name may hold spaces, so
    the type is taken from the end (an identifier, then balanced parentheses if any)."""
    start = len(entry)
    if entry.endswith(")"):
        depth, quoted = 0, False
        for i in range(len(entry) - 1, -1, -1):
            char = entry[i]
            if char == "'" and (i == 0 or entry[i - 1] != "\\"):
                quoted = not quoted
            elif not quoted and char == ")":
                depth += 1
            elif not quoted and char == "(":
                depth -= 1
                if depth == 0:
                    start = i
                    break
    first = start
    while first > 0 and (entry[first - 1].isalnum() or entry[first - 1] == "_"):
        first -= 1
    if first < 2 or entry[first - 1] != " ":
        raise ValueError(f"not a projection column: {entry!r}")
    return entry[: first - 1], entry[first:]


def projection_columns(explain_lines: Iterable[str]) -> list[tuple[str, str]]:
    """(name, type) of each output column, from EXPLAIN QUERY TREE's PROJECTION COLUMNS."""
    columns: list[tuple[str, str]] = []
    header_indent: int | None = None
    for line in explain_lines:
        indent = len(line) - len(line.lstrip(" "))
        if header_indent is None:
            if line.strip() == PROJECTION_HEADER:
                header_indent = indent
            continue
        if indent <= header_indent:
            break
        columns.append(split_column(line.strip(" ")))
    return columns


def catalog_rows(view: ParameterizedView, columns: Sequence[tuple[str, str]]) -> list[tuple[object, ...]]:
    """Rows shaped as dbt-clickhouse's catalog query returns them (CATALOG_COLUMNS)."""
    return [
        ("", view.schema, view.name, "view", view.comment or None, name, index, type_name, None, None)
        for index, (name, type_name) in enumerate(columns, start=1)
    ]
