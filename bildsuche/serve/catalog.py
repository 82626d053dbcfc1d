"""The store's views, as the endpoint needs them for every request.

A name called in table position must be a view of the store (parameterized
views parse like table functions), and `DESCRIBE` of a parameterized view is
answered here: the engine refuses to describe one (UNSUPPORTED_METHOD), which
BI tools listing tables trip over.  Reading system.tables costs about 1.5 ms
per request (docs/benchmarks.md, "Serve overhead"), so the views are read once
and again only after the writer has run a statement: nothing else changes the
store while serve holds it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from dbt.adapters.chdb.catalog import ParameterizedView, explain_sql, projection_columns

VIEWS_SQL = (
    "SELECT database, name, comment, "
    "arrayMap(p -> tupleElement(p, 'name'), parameterized_view_parameters), "
    "arrayMap(p -> tupleElement(p, 'type'), parameterized_view_parameters) "
    "FROM system.tables WHERE engine = 'View' FORMAT JSONCompact"
)

Query = Callable[[str], bytes]  # runs SQL on a read-only handle, returns the output in the format the SQL names


@dataclass
class Snapshot:
    views: dict[tuple[str, str], ParameterizedView | None]  # None: a plain view
    columns: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)


class Catalog:
    def __init__(self, query: Query) -> None:
        self._query = query
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._generation = 0

    def invalidate(self) -> None:
        """The writer ran a statement: read the views again before the next check."""
        with self._lock:
            self._snapshot = None
            self._generation += 1

    def _current(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._lock:
            generation = self._generation
        rows = json.loads(self._query(VIEWS_SQL))["data"]
        views: dict[tuple[str, str], ParameterizedView | None] = {}
        for database, name, comment, names, types in rows:
            parameters = tuple(zip(names, types, strict=True))
            views[(database, name)] = ParameterizedView(database, name, comment or "", parameters) if names else None
        snapshot = Snapshot(views)
        with self._lock:
            if self._generation == generation:  # no writer statement ended while it was read
                self._snapshot = snapshot
        return snapshot

    def is_view(self, name: str, database: str) -> bool:
        """Whether ``name`` (``db.view`` or ``view`` in ``database``) is a view of the store."""
        return self._find(name, database) is not None

    def _find(self, name: str, database: str) -> tuple[str, str] | None:
        views = self._current().views
        qualified, _, table = name.partition(".")
        for key in ((qualified, table), (database, name)):
            if key[1] and key in views:
                return key
        return None

    def parameterized_columns(self, name: str, database: str) -> list[tuple[str, str]] | None:
        """(name, type) of the columns of parameterized view ``name``, or None when it is none."""
        snapshot = self._current()
        key = self._find(name, database)
        view = snapshot.views.get(key) if key else None
        if key is None or view is None:
            return None
        if key not in snapshot.columns:
            lines = json.loads(self._query(explain_sql(view) + " FORMAT JSONCompact"))["data"]
            snapshot.columns[key] = projection_columns(str(row[0]) for row in lines)
        return snapshot.columns[key]
