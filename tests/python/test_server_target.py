"""The `clickhouse` target for real: `bildsuche serve --writer-password` holds a store, seeds_loader,
python_embed query and `dbt build --target clickhouse` (dbt-clickhouse's HTTP driver) write it through
the writer account, and readers keep getting answers while they do.

The same data set is built on the embedded target for reference: every relation must hold the same
rows (marts_compare.py), but for the models only the embedded adapter computes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect
import pytest
import requests

from bildsuche.dbt import environment, run_dbt
from bildsuche.store import client_for
from datasets_helpers import SyntheticDataset, write_synthetic
from marts_compare import differences
from python_embed.demo_model import DEMO_MODEL_NAME
from seeds_loader import load
from serve_helpers import server_stderr, start_serve, stop

pytestmark = pytest.mark.slow

WRITER_PASSWORD = "w-s3cret"
VARS = {"target_photo_id": "p0007", "top_k": 8}
OTHER_VARS = {"target_photo_id": "p0042", "top_k": 8}
READS = [
    "SELECT * FROM analytics.top_k_neighbours ORDER BY rank FORMAT TabSeparated",
    "SELECT * FROM analytics.conversions_per_candidate ORDER BY rank FORMAT TabSeparated",
    "SELECT * FROM analytics.keyword_breakdown ORDER BY downloads DESC, keyword FORMAT TabSeparated",
    "SELECT photo_id, rank FROM analytics.neighbours(photo_id = 'p0007', k = 5) ORDER BY rank FORMAT TabSeparated",
    "SELECT count() FROM analytics.photos FORMAT TabSeparated",
]


@dataclass
class Served:
    root: Path
    data: SyntheticDataset
    embedded: Path
    port: int
    process: subprocess.Popen[str]
    log: Path
    dbt_output: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CLICKHOUSE_HOST": "127.0.0.1",
            "CLICKHOUSE_PORT": str(self.port),
            "CLICKHOUSE_USER": "writer",
            "CLICKHOUSE_PASSWORD": WRITER_PASSWORD,
            "BILDSUCHE_DATA_DIR": str(self.root / "data"),
            "DBT_TARGET_PATH": str(self.root / "dbt-target"),
            "DBT_LOG_PATH": str(self.root / "dbt-logs"),
        }


def run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"{argv}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def dbt_build(served: Served, dbt_vars: dict[str, object]) -> str:
    """`dbt build --target clickhouse` in its own process, as a user runs it (dbt-clickhouse keeps
    per-process state that an embedded run in this process would have filled)."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    return run([dbt, "build", "--target", "clickhouse", "--vars", json.dumps(dbt_vars)], served.env())


def save_search(env: dict[str, str]) -> str:
    return run(
        [sys.executable, "-m", "python_embed", "query", "--name", "beach", "--text", "a sandy beach",
         "--model", "demo", "--target", "clickhouse"],
        env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("server-target")
    data = write_synthetic(root / "dataset", n=150, model=DEMO_MODEL_NAME)
    log = root / "serve.log"
    process, port = start_serve(root / "served", "--writer-password", WRITER_PASSWORD, "--log", str(log))
    served = Served(root, data, root / "embedded", port, process, log, "")
    try:
        run([sys.executable, "-m", "seeds_loader", str(data.directory), "--target", "clickhouse"], served.env())
        save_search(served.env())
        served.dbt_output = dbt_build(served, VARS)
        # The reference: the same files, search and vars on the embedded target.
        with client_for("embedded", path=served.embedded) as client:
            load(client, data.directory)
        env = {k: v for k, v in served.env().items() if not k.startswith("CLICKHOUSE_")}
        env["BILDSUCHE_DB_PATH"] = str(served.embedded)
        run([sys.executable, "-m", "python_embed", "query", "--name", "beach", "--text", "a sandy beach",
             "--model", "demo"], env)  # fmt: skip
        with environment({"DBT_TARGET_PATH": str(root / "t2"), "DBT_LOG_PATH": str(root / "l2")}):
            run_dbt(["build"], db_path=served.embedded, dbt_vars=VARS, quiet=True)
        yield served
    finally:
        stop(served.process)
    assert "Traceback" not in server_stderr(served.process), server_stderr(served.process)


def test_marts_equal_the_embedded_run(served: Served) -> None:
    reader = clickhouse_connect.get_client(host="127.0.0.1", port=served.port)
    assert reader.command("SELECT count() FROM analytics.search_results") == 8  # the search saved through serve
    with client_for("embedded", path=served.embedded) as embedded:
        assert differences(embedded, reader, ["p0007", "-p0017", "p0100"]) == []


def test_models_only_the_embedded_adapter_computes_are_named(served: Served) -> None:
    assert (
        "photo_neighbours, near_duplicates, keyword_suggestions, underexposed_lookalikes need the embedded "
        "adapter (target type chdb) and are skipped on "
        "target type 'clickhouse'"
    ) in served.dbt_output


def test_readers_get_the_old_table_or_the_new_one_during_a_build(served: Served) -> None:
    session = requests.Session()

    def answers() -> list[bytes]:
        replies = [session.post(served.url, data=sql.encode(), timeout=60) for sql in READS]
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        return [r.content for r in replies]

    before = answers()
    seen: list[list[bytes]] = []
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        own = requests.Session()
        while not done.is_set():
            row = []
            for sql in READS:
                try:
                    reply = own.post(served.url, data=sql.encode(), timeout=60)
                except requests.RequestException as exc:
                    errors.append(f"{sql}: {exc}")
                    continue
                if reply.status_code != 200:
                    errors.append(f"{sql}: {reply.status_code} {reply.text[:200]}")
                row.append(reply.content)
            seen.append(row)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        dbt_build(served, OTHER_VARS)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=120)
    after = answers()
    try:
        assert not errors, errors[:5]
        assert before[0] != after[0], "the build must change top_k_neighbours for this test to mean anything"
        assert len(seen) > 20, len(seen)
        for row in seen:
            for i, answer in enumerate(row):
                assert answer in (before[i], after[i]), (READS[i], answer[:200])
    finally:
        dbt_build(served, VARS)  # the other tests compare with the embedded run of VARS


def test_every_writer_statement_is_logged(served: Served) -> None:
    writer = clickhouse_connect.get_client(
        host="127.0.0.1", port=served.port, username="writer", password=WRITER_PASSWORD
    )
    statements = {
        "log-create": ("CREATE TABLE analytics.log_probe (a Int32) ENGINE = MergeTree ORDER BY a", "0"),
        "log-insert": ("INSERT INTO analytics.log_probe VALUES (1), (2)", "0"),
        "log-refused": ("SELECT * FROM file('/etc/passwd')", "497"),
        "log-drop": ("DROP TABLE analytics.log_probe", "0"),
    }
    for query_id, (sql, _) in statements.items():
        with contextlib.suppress(clickhouse_connect.driver.exceptions.DatabaseError):
            writer.command(sql, settings={"query_id": query_id})
    time.sleep(0.2)
    lines = served.log.read_text().splitlines()
    for query_id, (sql, code) in statements.items():
        mine = [line for line in lines if f" query_id={query_id} " in line]
        assert len(mine) == 1, (query_id, mine)
        assert " user=writer " in mine[0] and f" code={code} " in mine[0] and json.dumps(sql)[1:30] in mine[0]
    # dbt's statements too: every model's DDL went through the writer.
    assert sum(" user=writer " in line and "create" in line.lower() for line in lines) >= 8
