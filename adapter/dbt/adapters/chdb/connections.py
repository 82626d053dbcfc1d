from __future__ import annotations

from typing import Any

from dbt.adapters.chdb.credentials import ChdbCredentials
from dbt.adapters.chdb.engine import StoreError, connect
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
