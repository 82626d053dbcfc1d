from __future__ import annotations

from typing import Any

from dbt.adapters.chdb.credentials import ChdbCredentials
from dbt.adapters.chdb.engine import StoreError, connect
from dbt.adapters.clickhouse import dbclient
from dbt.adapters.clickhouse.connections import ClickHouseConnectionManager
from dbt.adapters.clickhouse.httpclient import ChHttpClient
from dbt.adapters.exceptions import FailedToConnectError


class ChdbClient(ChHttpClient):
    """dbt-clickhouse's clickhouse-connect wrapper, over the embedded engine."""

    def _create_client(self, credentials: Any) -> Any:
        try:
            return connect(credentials.path, settings=self._conn_settings)
        except StoreError as exc:
            raise FailedToConnectError(str(exc)) from exc

    def _ensure_database(self, database_engine: Any, cluster_name: Any) -> None:
        # dbt-clickhouse remembers per process, by name only, which databases it
        # created; one process may open several stores in turn (tests, library use),
        # so the check is repeated for each new client (a cheap EXISTS, no server).
        with dbclient._database_lock:
            dbclient._ensured_databases.discard(self.database)
        super()._ensure_database(database_engine, cluster_name)

    def close(self) -> None:
        self._client.close()


class ChdbConnectionManager(ClickHouseConnectionManager):
    TYPE = "chdb"

    @classmethod
    def open(cls, connection: Any) -> Any:
        if connection.state == "open":
            return connection
        credentials: ChdbCredentials = connection.credentials
        try:
            connection.handle = ChdbClient(credentials)
        except FailedToConnectError as exc:
            connection.handle = None
            connection.state = "fail"
            raise exc
        connection.state = "open"
        return connection
