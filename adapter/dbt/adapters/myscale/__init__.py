"""dbt adapter plugin `myscale`: dbt-clickhouse against a MyScale instance.

MyScale speaks ClickHouse's HTTP interface, so the connection is
dbt-clickhouse's own; the separate type only lets macros dispatch to
``myscale__*`` implementations (MSTG vector index, ``distance()``).
"""

from dataclasses import dataclass

from dbt.adapters.base import AdapterPlugin
from dbt.adapters.clickhouse.connections import ClickHouseConnectionManager
from dbt.adapters.clickhouse.credentials import ClickHouseCredentials
from dbt.adapters.clickhouse.impl import ClickHouseAdapter
from dbt.include import myscale


@dataclass
class MyScaleCredentials(ClickHouseCredentials):
    @property
    def type(self) -> str:
        return "myscale"


class MyScaleConnectionManager(ClickHouseConnectionManager):
    TYPE = "myscale"


class MyScaleAdapter(ClickHouseAdapter):
    ConnectionManager = MyScaleConnectionManager


Plugin = AdapterPlugin(
    adapter=MyScaleAdapter,  # type: ignore[arg-type]
    credentials=MyScaleCredentials,
    include_path=myscale.PACKAGE_PATH,
    dependencies=["clickhouse"],
)
