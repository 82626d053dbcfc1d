from __future__ import annotations

from dbt.adapters.chdb.connections import ChdbConnectionManager
from dbt.adapters.clickhouse.impl import ClickHouseAdapter


class ChdbAdapter(ClickHouseAdapter):
    """dbt-clickhouse unchanged but for the connection: macros resolve as
    ``chdb__*`` first, then ``clickhouse__*``, then ``default__*``."""

    ConnectionManager = ChdbConnectionManager

    @classmethod
    def date_function(cls) -> str:
        return "now()"
