from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dbt.adapters.base import available
from dbt.adapters.base.relation import BaseRelation
from dbt.adapters.chdb import catalog, neighbours
from dbt.adapters.chdb.connections import ChdbClient, ChdbConnectionManager
from dbt.adapters.clickhouse.impl import ClickHouseAdapter
from dbt_common.exceptions import DbtRuntimeError

if TYPE_CHECKING:
    import agate
    from clickhouse_connect.driver.client import Client

STAGING_SUFFIX = "__neighbours_new"


class ChdbAdapter(ClickHouseAdapter):
    """dbt-clickhouse unchanged but for the connection and the catalog: macros
    resolve as ``chdb__*`` first, then ``clickhouse__*``, then ``default__*``."""

    ConnectionManager = ChdbConnectionManager

    @classmethod
    def date_function(cls) -> str:
        return "now()"

    def _native_client(self) -> Client:
        handle = self.connections.get_thread_connection().handle
        assert isinstance(handle, ChdbClient)
        return handle.native_client

    @available
    def nearest_neighbours(
        self,
        sql: str,
        relation: BaseRelation,
        k: int,
        full_refresh: bool = False,
        max_rows: int | None = None,
        id_column: str = "id",
        vector_column: str = "embedding",
        neighbour_column: str = "neighbour_id",
        method: str = "exact",
        recall: float = 0.95,
    ) -> dict[str, Any]:
        """Refresh ``relation`` with the k nearest neighbours of every row ``sql`` selects
        (columns ``id_column`` and ``vector_column``); see dbt.adapters.chdb.neighbours."""
        staging = relation.incorporate(path={"identifier": f"{relation.identifier}{STAGING_SUFFIX}"})
        target = neighbours.Target(str(relation.schema), str(relation.identifier), str(relation), str(staging))
        columns = neighbours.Columns(id_column, vector_column, neighbour_column)
        try:
            stats = neighbours.refresh(
                self._native_client(),
                sql,
                target,
                int(k),
                columns,
                bool(full_refresh),
                max_rows,
                str(method),
                float(recall),
            )
        except neighbours.NeighboursError as exc:
            raise DbtRuntimeError(f"{relation}: {exc}") from exc
        return stats.as_dict()

    # dbt docs: dbt-clickhouse's catalog plus the parameterized views it cannot see.

    def get_catalog(self, relation_configs: Any, used_schemas: Any) -> tuple[agate.Table, list[Exception]]:
        table, errors = super().get_catalog(relation_configs, used_schemas)
        return self._with_parameterized_views(table, {schema for _, schema in used_schemas}), errors

    def get_catalog_by_relations(self, used_schemas: Any, relations: Any) -> tuple[agate.Table, list[Exception]]:
        table, errors = super().get_catalog_by_relations(used_schemas, relations)
        return self._with_parameterized_views(table, {r.schema for r in relations if r.schema}), errors

    def _with_parameterized_views(self, table: agate.Table, schemas: Iterable[str]) -> agate.Table:
        import agate

        client = self._native_client()
        rows: list[tuple[object, ...]] = []
        for view in catalog.parameterized_views(client, schemas):
            rows += catalog.catalog_rows(view, catalog.view_columns(client, view))
        if not rows:
            return table
        names = list(table.column_names)
        added = [dict(zip(catalog.CATALOG_COLUMNS, row, strict=True)) for row in rows]
        merged = [tuple(row) for row in table.rows] + [tuple(row[name] for name in names) for row in added]
        # The column types of dbt's catalog table keep '' (table_database) from turning into null.
        return agate.Table(merged, names, table.column_types)
