"""The embedded store: one process at a time, with a clear message for the second."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bildsuche.config import project_dir
from bildsuche.errors import StoreUnavailableError
from bildsuche.store import client_for, open_client

PROJECT = project_dir()


def test_second_process_gets_a_clear_message(tmp_path: Path) -> None:
    store = tmp_path / "store"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from bildsuche.store import open_client
            c = open_client('embedded', path={str(store)!r})
            c.command('SELECT 1')
            print('ready', flush=True)
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreUnavailableError, match=rf"is open in process {holder.pid}; chDB allows one process"):
            open_client("embedded", path=store)
        cli = subprocess.run(
            [sys.executable, "-m", "seeds_loader", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "BILDSUCHE_DB_PATH": str(store)},
            timeout=120,
        )
        assert cli.returncode == 1
        assert cli.stderr.strip().startswith("seeds_loader: error: the embedded store")
        assert "Traceback" not in cli.stderr
        dbt = subprocess.run(
            [
                str(Path(sys.executable).parent / "dbt"),
                "run",
                "--project-dir",
                str(PROJECT),
                "--profiles-dir",
                str(PROJECT),
            ],
            capture_output=True,
            text=True,
            cwd=PROJECT,
            timeout=300,
            env={**os.environ, "BILDSUCHE_DB_PATH": str(store)},
        )
        assert dbt.returncode != 0
        assert f"is open in process {holder.pid}; chDB allows one process per store" in dbt.stdout
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    with client_for("embedded", path=store) as client:
        assert client.command("SELECT 1") == 1


def test_unknown_target_is_a_usage_error() -> None:
    with pytest.raises(Exception, match="unknown target 'nosuch'"):
        open_client("nosuch")


def test_adapter_plugins_are_children_of_dbt_clickhouse() -> None:
    from dbt.adapters.chdb import Plugin as ChdbPlugin
    from dbt.adapters.myscale import Plugin as MyScalePlugin

    for plugin, name in ((ChdbPlugin, "chdb"), (MyScalePlugin, "myscale")):
        assert plugin.dependencies == ["clickhouse"]
        assert plugin.adapter.type() == name
        assert Path(plugin.include_path, "dbt_project.yml").is_file()


def test_every_target_of_profiles_yml_parses() -> None:
    for target in ("embedded", "clickhouse", "myscale"):
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "dbt"),
                "ls",
                "--resource-type",
                "model",
                "--target",
                target,
                "--project-dir",
                str(PROJECT),
                "--profiles-dir",
                str(PROJECT),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            cwd=PROJECT,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "bildsuche.marts.top_k_neighbours" in done.stdout
