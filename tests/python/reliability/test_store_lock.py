"""A store held by another process: every tool says which process holds it, in one line, and stores nothing.

tests/python/test_store.py holds the first cases (a Python holder against
open_client, seeds_loader and the dbt CLI); here the holder is `bildsuche serve`,
and the tools are the others: python_embed query, bildsuche report, a second
serve, dbt in-process.  A holder killed with -9 leaves the store usable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bildsuche.dbt import run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from reliability.stores import FINGERPRINT_SQL, PayloadStore
from serve_helpers import start_serve, stop

pytestmark = pytest.mark.slow


@pytest.fixture()
def held(payload_store: PayloadStore) -> Iterator[tuple[Path, int]]:
    process, _ = start_serve(payload_store.store)
    try:
        yield payload_store.store, process.pid
    finally:
        stop(process)


def cli(store: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True, text=True, timeout=300, env={**os.environ, "BILDSUCHE_DB_PATH": str(store)},
    )  # fmt: skip


def test_every_tool_names_the_holder(tmp_path: Path, held: tuple[Path, int], demo_model_dir: Path) -> None:
    store, pid = held
    message = f"is open in process {pid}; chDB allows one process per store"
    commands = {
        "python_embed": ("python_embed", "query", "--name", "q", "--text", "a beach", "--model", str(demo_model_dir)),
        "bildsuche": ("bildsuche.cli", "report", "--out", str(tmp_path / "report"), "--offline"),
        "seeds_loader": ("seeds_loader", str(tmp_path)),
    }
    for prog, command in commands.items():
        done = cli(store, *command)
        assert done.returncode == 1, (prog, done.stdout, done.stderr)
        assert done.stderr.strip().splitlines()[-1].startswith(f"{prog}: error: "), (prog, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (prog, done.stderr)
    assert not (tmp_path / "report").exists()
    second = subprocess.run(
        [sys.executable, "-m", "bildsuche.cli", "serve", "--path", str(store), "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert second.returncode == 1 and message in second.stderr, second.stderr
    with pytest.raises(DbtRunError, match=message):
        run_dbt(["run", "--select", "top_k_neighbours"], db_path=store, quiet=True)


def test_a_holder_killed_with_sigkill_leaves_the_store_usable(payload_store: PayloadStore) -> None:
    with client_for("embedded", path=payload_store.store) as client:
        before = client.query(FINGERPRINT_SQL).result_rows
    process, _ = start_serve(payload_store.store)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with client_for("embedded", path=payload_store.store) as client:
        assert client.query(FINGERPRINT_SQL).result_rows == before
