from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client
from dbt.adapters.chdb.engine import StoreError, connect
from dbt.adapters.clickhouse.connections import ClickHouseConnectionManager
from dbt.adapters.clickhouse.httpclient import ChHttpClient
from dbt.adapters.clickhouse.logger import logger
from dbt.adapters.exceptions import FailedToConnectError


class ChdbClient(ChHttpClient):
    """dbt-clickhouse's clickhouse-connect wrapper, over the embedded engine.

    dbt-clickhouse has no public factory for its client: implementing the
    wrapper's abstract ``_create_client`` is how its own HTTP and native
    clients plug in, and how this one does.
    """

    def _create_client(self, credentials: Any) -> Client:
        try:
            return connect(credentials.path, settings=self._conn_settings)
        except StoreError as exc:
            raise FailedToConnectError(str(exc)) from exc

    def _ensure_database(self, database_engine: Any, cluster_name: Any) -> None:
        # dbt-clickhouse remembers per process, by name only, which databases exist; one
        # process may open several stores in turn (tests, library use), so that memory is
        # cleared through its public hook and the cheap EXISTS check runs for every client.
        if self.database:
            self.database_dropped(self.database)
        super()._ensure_database(database_engine, cluster_name)

    @property
    def native_client(self) -> Client:
        """The clickhouse-connect client, for Arrow reads and inserts dbt's API has no call for."""
        return self._client


class ChdbConnectionManager(ClickHouseConnectionManager):
    TYPE = "chdb"

    @classmethod
    def open(cls, connection: Any) -> Any:
        if connection.state == "open":
            return connection
        credentials = connection.credentials
        return cls.retry_connection(
            connection,
            connect=lambda: ChdbClient(credentials),
            logger=logger,
            retry_limit=0,  # a held store stays held: retrying only delays the message
            retryable_exceptions=(),
        )
