"""The `chdb` dbt plugin on its own project: connection, the nearest_neighbours
materialization with configured column names, the catalog of parameterized views."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from dbt.adapters.chdb.engine import connect

from conftest import Dbt


def vectors(n: int) -> dict[str, np.ndarray]:
    """The vectors of model `items` (conftest.ITEMS)."""
    return {str(i): np.array([math.sin(i * (j + 1) * 0.37 + j) for j in range(8)]) for i in range(n)}


def _exact(rows: dict[str, np.ndarray], k: int) -> dict[str, list[str]]:
    ids = sorted(rows)
    x = np.array([rows[i] for i in ids])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dist = 1 - x @ x.T
    np.fill_diagonal(dist, np.inf)
    return {pid: [ids[j] for j in np.argsort(dist[r], kind="stable")[:k]] for r, pid in enumerate(ids)}


def _stored(path: Path) -> dict[str, list[str]]:
    client = connect(path)
    try:
        rows = client.query("select item_id, near_id from lab.item_neighbours order by item_id, rank").result_rows
        names = [
            r[0]
            for r in client.query(
                "select name from system.columns where database = 'lab' and table = 'item_neighbours' order by position"
            ).result_rows
        ]
    finally:
        client.close()
    assert names == ["item_id", "near_id", "rank", "dist", "vec_hash", "computed_at"]
    lists: dict[str, list[str]] = {}
    for item, near in rows:
        lists.setdefault(item, []).append(near)
    return lists


def test_nearest_neighbours_with_configured_columns(dbt: Dbt, tmp_path: Path) -> None:
    assert dbt("run").success
    assert _stored(tmp_path / "store") == _exact(vectors(60), 3)
    # More rows: the next run brings every list up to date.
    assert dbt("run", vars={"n": 90}).success
    assert _stored(tmp_path / "store") == _exact(vectors(90), 3)


def test_too_many_rows_are_refused_before_any_work(dbt: Dbt, tmp_path: Path) -> None:
    assert dbt("run").success
    before = _stored(tmp_path / "store")
    result = dbt("run", "--select", "items", "item_neighbours", vars={"n": 90, "max_rows": 80})
    assert not result.success
    assert "90 rows exceed max_rows (80)" in str([r.message for r in result.result.results])
    client = connect(tmp_path / "store")
    try:
        assert client.command("select count() from lab.items") == 90
    finally:
        client.close()
    assert _stored(tmp_path / "store") == before


def test_a_profile_without_a_path_is_refused_by_name(dbt: Dbt, project: Path) -> None:
    profiles = project / "profiles.yml"
    profiles.write_text("\n".join(line for line in profiles.read_text().splitlines() if "path:" not in line))
    result = dbt("run")
    assert not result.success
    assert "a `type: chdb` profile needs `path`" in str(result.exception)


def test_a_held_store_names_its_holder(dbt: Dbt, tmp_path: Path) -> None:
    store = tmp_path / "store"
    connect(store).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, chdb; c = chdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
            str(store),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = dbt("run", "--select", "items")
        assert not result.success
        message = str(result.exception) + str([r.message for r in getattr(result.result, "results", []) or []])
        assert f"is open in process {holder.pid}; chDB allows one process per store" in message
    finally:
        holder.communicate("", timeout=60)


def test_docs_list_the_columns_of_parameterized_views(dbt: Dbt, tmp_path: Path) -> None:
    assert dbt("run").success
    assert dbt("docs", "generate").success
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    lookup = catalog["nodes"]["model.plugin_tests.item_lookup"]
    assert list(lookup["columns"]) == ["item_id", "vec"]
    assert lookup["columns"]["vec"]["type"] == "Array(Float64)"
