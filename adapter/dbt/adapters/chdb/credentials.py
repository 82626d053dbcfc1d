from __future__ import annotations

import os
from dataclasses import dataclass

from dbt.adapters.clickhouse.credentials import ClickHouseCredentials

DEFAULT_PATH_ENV = "BILDSUCHE_DB_PATH"


@dataclass
class ChdbCredentials(ClickHouseCredentials):
    """Credentials of the embedded engine: only a store directory.

    Everything else (host, port, user, ...) is inherited from dbt-clickhouse so
    its code paths keep working, and ignored by the engine.
    """

    path: str = ""

    @property
    def type(self) -> str:
        return "chdb"

    @property
    def unique_field(self) -> str:
        return self.path

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:
            self.path = os.environ.get(DEFAULT_PATH_ENV, "data/bildsuche.chdb")
        # No server handshake happens, so a short connect timeout is pointless,
        # and retries would only repeat a lock failure.
        self.retries = 1

    def _connection_keys(self) -> tuple[str, ...]:
        return ("path", "schema", "custom_settings")
