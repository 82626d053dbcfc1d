from __future__ import annotations

from typing import Any

from dbt.adapters.base import available
from dbt.adapters.base.relation import BaseRelation
from dbt.adapters.chdb import neighbours
from dbt.adapters.chdb.connections import ChdbConnectionManager
from dbt.adapters.clickhouse.impl import ClickHouseAdapter
from dbt_common.exceptions import DbtRuntimeError


class ChdbAdapter(ClickHouseAdapter):
    """dbt-clickhouse unchanged but for the connection: macros resolve as
    ``chdb__*`` first, then ``clickhouse__*``, then ``default__*``."""

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
