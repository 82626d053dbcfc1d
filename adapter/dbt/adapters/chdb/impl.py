from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dbt.adapters.base import available
from dbt.adapters.base.relation import BaseRelation
from dbt.adapters.chdb import catalog, neighbours
from dbt.adapters.chdb.connections import ChdbConnectionManager
from dbt.adapters.clickhouse.impl import ClickHouseAdapter
from dbt_common.exceptions import DbtRuntimeError

if TYPE_CHECKING:
    import agate


class ChdbAdapter(ClickHouseAdapter):
    """dbt-clickhouse unchanged but for the connection and the catalog: macros
    resolve as ``chdb__*`` first, then ``clickhouse__*``, then ``default__*``."""

    ConnectionManager = ChdbConnectionManager

    @classmethod
    def date_function(cls) -> str:
        return "now()"

    @available
    def nearest_neighbours(
        self, sql: str, relation: BaseRelation, k: int, full_refresh: bool = False, max_photos: int | None = None
    ) -> dict[str, Any]:
        """Refresh `relation` with the k nearest neighbours of every photo `sql` selects
        (columns photo_id, photo_embed); see dbt.adapters.chdb.neighbours."""
        client = self.connections.get_thread_connection().handle._client
        try:
            database, name = str(relation.schema), str(relation.identifier)
            stats = neighbours.refresh(client, sql, database, name, int(k), full_refresh, max_photos)
        except neighbours.NeighboursError as exc:
            raise DbtRuntimeError(f"{relation}: {exc}") from exc
        return stats.as_dict()

    # dbt docs: dbt-clickhouse's catalog plus the parameterized views it cannot see.

    def _get_one_catalog(self, information_schema: Any, schemas: Any, used_schemas: Any) -> agate.Table:
        table = super()._get_one_catalog(information_schema, schemas, used_schemas)
        return self._with_parameterized_views(table, schemas, used_schemas)

    def _get_one_catalog_by_relations(self, information_schema: Any, relations: Any, used_schemas: Any) -> agate.Table:
        table = super()._get_one_catalog_by_relations(information_schema, relations, used_schemas)
        return self._with_parameterized_views(table, {r.schema for r in relations if r.schema}, used_schemas)

    def _with_parameterized_views(self, table: agate.Table, schemas: Iterable[str], used_schemas: Any) -> agate.Table:
        import agate

        schemas = set(schemas)
        if not schemas:
            return table
        _, found = self.execute(catalog.views_sql(schemas), fetch=True)
        rows: list[Any] = []
        for view in catalog.parse_views(found.rows):
            _, tree = self.execute(catalog.explain_sql(view), fetch=True)
            columns = catalog.projection_columns(str(row[0]) for row in tree.rows)
            rows += catalog.catalog_rows(view, columns)
        if not rows:
            return table
        names = list(table.column_names)
        added = [dict(zip(catalog.CATALOG_COLUMNS, row, strict=True)) for row in rows]
        merged = [tuple(row) for row in table.rows] + [tuple(row[name] for name in names) for row in added]
        # The column types of dbt's catalog table keep '' (table_database) from turning into null.
        return self._catalog_filter_table(agate.Table(merged, names, table.column_types), used_schemas)
