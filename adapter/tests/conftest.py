"""A small dbt project of its own on the `chdb` plugin: no application, only the plugin."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dbt.cli.main import dbtRunner, dbtRunnerResult

PROJECT = """
name: plugin_tests
version: "1.0"
config-version: 2
profile: plugin_tests
model-paths: ["models"]
macro-paths: ["macros"]
vars:
  n: 60
  max_rows: 100000
"""

PROFILES = """
plugin_tests:
  target: store
  outputs:
    store:
      type: chdb
      path: "{path}"
      schema: lab
      threads: 1
"""

# Rows with 8-d vectors the tests compute too (test_plugin.vectors).
ITEMS = """
{{ config(materialized='table', order_by='item_id') }}
select
    toString(number) as item_id,
    arrayMap(j -> sin(number * (j + 1) * 0.37 + j), range(8)) as vec
from numbers({{ var('n') }})
"""

NEIGHBOURS = """
{{ config(materialized='nearest_neighbours', k=3, id_column='item_id', vector_column='vec',
          neighbour_column='near_id', max_rows=var('max_rows')) }}
select item_id, vec from {{ ref('items') }}
"""

LOOKUP = """
{{ config(materialized='parameterized_view') }}
select item_id, vec from {{ ref('items') }} where item_id = {{ '{id:String}' }}
"""

PARAMETERIZED_VIEW = """
{% materialization parameterized_view, adapter='clickhouse' %}
    {%- set target_relation = this.incorporate(type='view') -%}
    {% call statement('main') -%}
        create or replace view {{ target_relation }} as {{ sql }}
    {%- endcall %}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
"""

Dbt = Callable[..., dbtRunnerResult]


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    files = {
        "dbt_project.yml": PROJECT,
        "profiles.yml": PROFILES.format(path=tmp_path / "store"),
        "models/items.sql": ITEMS,
        "models/item_neighbours.sql": NEIGHBOURS,
        "models/item_lookup.sql": LOOKUP,
        "macros/parameterized_view.sql": PARAMETERIZED_VIEW,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    return root


@pytest.fixture()
def dbt(project: Path) -> Dbt:
    def run(*args: str, vars: dict[str, Any] | None = None) -> dbtRunnerResult:
        argv = [*args, "--project-dir", str(project), "--profiles-dir", str(project)]
        return dbtRunner().invoke(argv, **({"vars": vars} if vars else {}))

    return run
