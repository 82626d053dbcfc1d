"""The embedded store: one process at a time, with a clear message for the second."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bildsuche.errors import StoreUnavailableError
from bildsuche.store import client_for, open_client


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
            env={**__import__("os").environ, "BILDSUCHE_DB_PATH": str(store)},
            timeout=120,
        )
        assert cli.returncode == 1
        assert cli.stderr.strip().startswith("seeds_loader: error: the embedded store")
        assert "Traceback" not in cli.stderr
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
