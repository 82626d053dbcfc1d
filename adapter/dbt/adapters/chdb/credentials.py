from __future__ import annotations

from dataclasses import dataclass

from dbt.adapters.clickhouse.credentials import ClickHouseCredentials
from dbt_common.exceptions import DbtConfigError


@dataclass
class ChdbCredentials(ClickHouseCredentials):
    """Credentials of the embedded engine: only a store directory (``path``).

    Everything else (host, port, user, ...) is inherited from dbt-clickhouse so
    its code paths keep working, and ignored by the engine.  A relative path is
    taken from the directory dbt runs in.
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
        if not self.path.strip():
            raise DbtConfigError("a `type: chdb` profile needs `path`: the directory of the embedded store")

    def _connection_keys(self) -> tuple[str, ...]:
        return ("path", "schema", "custom_settings")
