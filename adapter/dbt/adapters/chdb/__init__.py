"""dbt adapter plugin `chdb`: dbt-clickhouse on the embedded chDB engine.

dbt reads ``Plugin`` from this module when a profile names ``type: chdb``.
It is built on first access, so that the dbt-free modules of the plugin
(``engine``: open a store directory; ``neighbours``: the all-pairs search)
can be imported without importing dbt (0.85 s; docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name != "Plugin":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from dbt.adapters.base import AdapterPlugin
    from dbt.adapters.chdb.credentials import ChdbCredentials
    from dbt.adapters.chdb.impl import ChdbAdapter
    from dbt.include import chdb

    plugin = AdapterPlugin(
        adapter=ChdbAdapter,  # type: ignore[arg-type]
        credentials=ChdbCredentials,
        include_path=chdb.PACKAGE_PATH,
        dependencies=["clickhouse"],
    )
    globals()["Plugin"] = plugin
    return plugin
