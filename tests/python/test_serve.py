"""`bildsuche serve` queried by real ClickHouse clients over loopback.

What a reader may not do (the statement policy, the read-only engine handle, file()/url(),
INTO OUTFILE, smuggled statements) and what the writer may not do are tested in
reliability/test_serve_hostile.py; here what clients do: formats, parameters, users, the
log, database default as a BI tool sees it, DESCRIBE of the parameterized views.  Both run
in every pytest run (the battery's quick form is part of tests/python); keep them together
when running serve's tests.  The writer's clients (dbt, the loaders) are in
test_server_target.py, pictures in test_serve_pictures.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect
import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
import requests
import sqlalchemy

from bildsuche.errors import StoreUnavailableError
from bildsuche.store import client_for, open_client
from datasets_helpers import built_store, write_synthetic
from serve_helpers import start_serve, stop

pytestmark = pytest.mark.slow


@dataclass
class Served:
    url: str
    port: int
    process: subprocess.Popen[str]
    store: Path
    expected: dict[str, list[tuple[object, ...]]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    store = built_store(root, write_synthetic(root / "dataset", n=120), {"target_photo_id": "p0007", "top_k": 8})
    with client_for("embedded", path=store) as client:
        expected = {
            "top_k": client.query(
                "SELECT rank, photo_id, dist FROM analytics.top_k_neighbours ORDER BY rank"
            ).result_rows,
            "downloads": client.query(
                "SELECT photo_id, downloads FROM analytics.conversions_per_candidate ORDER BY photo_id"
            ).result_rows,
            "photos": client.query("SELECT count() FROM raw.photos").result_rows,
        }
    process, port = start_serve(store, "--log", str(root / "serve.log"))
    served = Served(f"http://127.0.0.1:{port}", port, process, store, expected)
    try:
        yield served
    finally:
        stop(served.process)  # the one running now: test_password_limits_and_time_limit starts another


def test_clickhouse_connect_query_df_and_arrow(served: Served) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=served.port)
    rows = client.query("SELECT rank, photo_id, dist FROM analytics.top_k_neighbours ORDER BY rank").result_rows
    assert rows == served.expected["top_k"]
    frame = client.query_df("SELECT photo_id, downloads FROM analytics.conversions_per_candidate ORDER BY photo_id")
    assert list(frame.itertuples(index=False, name=None)) == served.expected["downloads"]
    table = client.query_arrow(
        "SELECT photo_id, downloads FROM conversions_per_candidate", settings={"database": "analytics"}
    )
    assert table.num_rows == len(served.expected["downloads"])
    assert client.command("SELECT count() FROM raw.photos") == served.expected["photos"][0][0]
    client.close()


def test_sqlalchemy_dialect_with_pandas_read_sql(served: Served) -> None:
    engine = sqlalchemy.create_engine(f"clickhousedb://default:@127.0.0.1:{served.port}/analytics")
    frame = pd.read_sql("SELECT rank, photo_id FROM top_k_neighbours ORDER BY rank", engine)
    assert list(frame["photo_id"]) == [r[1] for r in served.expected["top_k"]]
    engine.dispose()


@pytest.mark.parametrize("database", ["default", "analytics"])
def test_pandas_read_sql_with_either_database(served: Served, database: str) -> None:
    # pandas asks EXISTS TABLE `<the query>` first; database default's file layer answered 1 ("Could not reflect").
    engine = sqlalchemy.create_engine(f"clickhousedb://default:@127.0.0.1:{served.port}/{database}")
    frame = pd.read_sql("SELECT * FROM analytics.conversions_per_candidate ORDER BY photo_id", engine)
    assert list(zip(frame["photo_id"], frame["downloads"], strict=True)) == served.expected["downloads"]
    assert not sqlalchemy.inspect(engine).has_table("SELECT * FROM analytics.conversions_per_candidate")
    engine.dispose()


def test_database_default_as_on_a_server(served: Served) -> None:
    assert post(served, "EXISTS TABLE `SELECT * FROM analytics.keyword_breakdown`").text == "0\n"
    assert post(served, "EXISTS TABLE default.nope").text == "0\n"
    assert post(served, "EXISTS TABLE analytics.photos").text == "1\n"
    assert post(served, "SHOW TABLES FROM default").text == ""
    for sql in ("DESCRIBE TABLE nope", "DESCRIBE TABLE `/etc/passwd`", "SHOW CREATE TABLE default.`/etc/hosts`"):
        reply = post(served, sql)
        assert reply.status_code == 404 and reply.headers["X-ClickHouse-Exception-Code"] == "60", (sql, reply.text)


def test_parameterized_views_are_described(served: Served) -> None:
    # BI tools list them with the tables and DESCRIBE them; the engine refuses (UNSUPPORTED_METHOD).
    tables = post(served, "SHOW TABLES FROM analytics").text.split()
    assert {"neighbours", "filtered_neighbours"} <= set(tables)
    for name in ("neighbours", "filtered_neighbours"):
        reply = post(served, f"DESCRIBE TABLE analytics.{name} FORMAT JSONEachRow")
        assert reply.status_code == 200, reply.text
        columns = [json.loads(line) for line in reply.text.splitlines()]
        assert [c["name"] for c in columns] == ["target_photo_id", "photo_id", "photo_image_url", "picture_url",
                                                 "dist", "rank"]  # fmt: skip
        assert columns[-2]["type"] == "Float64" and columns[-1]["type"] == "UInt32"
    client = clickhouse_connect.get_client(host="127.0.0.1", port=served.port, database="analytics")
    assert [row[0] for row in client.query("DESCRIBE neighbours").result_rows][:2] == ["target_photo_id", "photo_id"]
    client.close()


def test_users_are_honoured(served: Served) -> None:
    for auth in (("bob", "secret"), ("bob", ""), ("writer", ""), ("default", "not-set")):
        reply = requests.post(served.url, data=b"SELECT currentUser()", auth=auth, timeout=30)
        assert reply.status_code == 403 and reply.headers["X-ClickHouse-Exception-Code"] == "516", auth
        assert reply.text.startswith(f"Code: 516. DB::Exception: {auth[0]}: Authentication failed")
    headers = {"X-ClickHouse-User": "bob", "X-ClickHouse-Key": ""}
    assert requests.post(served.url, data=b"SELECT 1", headers=headers, timeout=30).status_code == 403
    assert requests.post(served.url, params={"user": "bob"}, data=b"SELECT 1", timeout=30).status_code == 403
    assert requests.post(served.url, data=b"SELECT 1", auth=("default", ""), timeout=30).text == "1\n"


def test_one_log_line_per_request(served: Served) -> None:
    reply = post(served, "SELECT rank FROM analytics.top_k_neighbours\nORDER BY rank", query_id="log-test-read")
    assert reply.status_code == 200
    post(served, "SELECT nope()", query_id="log-test-error")
    requests.post(served.url, data=b"SELECT 1", auth=("bob", "x"), params={"query_id": "log-test-auth"}, timeout=30)
    lines = (served.store.parent / "serve.log").read_text().splitlines()

    def line_of(query_id: str) -> str:
        (found,) = [line for line in lines if f" query_id={query_id} " in line]
        return found

    read = line_of("log-test-read")
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    sql = r"sql=\"SELECT rank FROM analytics.top_k_neighbours\\nORDER BY rank\"$"
    assert re.match(stamp + r" user=default query_id=log-test-read rows=\d+ ms=[\d.]+ code=0 " + sql, read)
    assert " code=46 " in line_of("log-test-error")
    assert " user=bob " in line_of("log-test-auth") and " code=516 " in line_of("log-test-auth")


def post(served: Served, sql: str, **params: str) -> requests.Response:
    return requests.post(served.url, params=params, data=sql.encode(), timeout=60)


def photo_ids(fmt: str, body: bytes) -> list[str]:
    """The photo_id column of a result of `SELECT rank, photo_id ...` in ``fmt``."""
    if fmt == "TabSeparatedWithNames":
        lines = body.decode().splitlines()
        assert lines[0] == "rank\tphoto_id"
        return [line.split("\t")[1] for line in lines[1:]]
    if fmt == "CSV":
        return [line.split(",")[1].strip('"') for line in body.decode().splitlines()]
    if fmt == "JSON":
        return [row["photo_id"] for row in json.loads(body)["data"]]
    if fmt == "JSONEachRow":
        return [json.loads(line)["photo_id"] for line in body.decode().splitlines()]
    if fmt == "JSONCompact":
        return [row[1] for row in json.loads(body)["data"]]
    if fmt == "Parquet":
        return pq.read_table(io.BytesIO(body)).column("photo_id").to_pylist()
    if fmt == "Arrow":
        return pa.ipc.open_file(io.BytesIO(body)).read_all().column("photo_id").to_pylist()
    if fmt == "RowBinaryWithNamesAndTypes":
        assert body[:1] == b"\x02" and b"photo_id" in body and b"UInt32" in body and b"String" in body
    return re.findall(rb"-?p\d{4}", body)  # binary formats: the ids appear verbatim


@pytest.mark.parametrize(
    "fmt,kind",
    [
        ("TabSeparatedWithNames", "text/tab-separated-values"),
        ("CSV", "text/csv"),
        ("JSON", "application/json"),
        ("JSONEachRow", "application/json"),
        ("JSONCompact", "application/json"),
        ("Native", "application/octet-stream"),
        ("RowBinaryWithNamesAndTypes", "application/octet-stream"),
        ("Parquet", "application/octet-stream"),
        ("Arrow", "application/octet-stream"),
    ],
)
def test_plain_http_formats(served: Served, fmt: str, kind: str) -> None:
    sql = "SELECT rank, photo_id FROM analytics.top_k_neighbours ORDER BY rank"
    ids = [r[1] for r in served.expected["top_k"]]
    in_query = post(served, f"{sql} FORMAT {fmt}")
    as_default = requests.get(served.url, params={"query": sql, "default_format": fmt}, timeout=60)
    for reply in (in_query, as_default):
        assert reply.status_code == 200, reply.text
        assert reply.headers["X-ClickHouse-Format"] == fmt
        assert reply.headers["Content-Type"].startswith(kind)
        assert "read_rows" in json.loads(reply.headers["X-ClickHouse-Summary"])
        found = photo_ids(fmt, reply.content)
        if fmt in ("Native", "RowBinaryWithNamesAndTypes"):
            assert set(ids) <= {pid.decode() for pid in found}
        else:
            assert found == ids


def test_ping_and_query_parameters(served: Served) -> None:
    assert requests.get(f"{served.url}/ping", timeout=10).text == "Ok.\n"
    target = served.expected["top_k"][0][1]
    reply = post(
        served, "SELECT rank FROM analytics.top_k_neighbours WHERE photo_id = {pid:String}", param_pid=str(target)
    )
    assert reply.text == "1\n"
    view = post(
        served,
        "SELECT rank, photo_id FROM analytics.neighbours(photo_id = {pid:String}, k = {k:UInt32}) ORDER BY rank",
        param_pid="p0007",
        param_k="8",
    )
    assert view.status_code == 200, view.text
    assert view.text.splitlines() == [f"{rank}\t{pid}" for rank, pid, _ in served.expected["top_k"]]
    reply = post(served, "SELECT {evil:String}", param_evil="x' OR 1=1 --")
    assert reply.text == "x\\' OR 1=1 --\n"


def test_neighbour_views_answer_exact_distances_by_default(served: Served) -> None:
    # The mart's distances are exact (re-scored float32); a BI tool that sets no
    # engine settings gets the same from the view, not the index's bf16 ones.
    sql = "SELECT rank, photo_id, dist FROM analytics.neighbours(photo_id = 'p0007', k = 8) ORDER BY rank"
    exact = {pid: dist for _, pid, dist in served.expected["top_k"]}

    def distances(**settings: str) -> dict[str, float]:
        reply = post(served, sql, **settings)
        assert reply.status_code == 200, reply.text
        return {line.split("\t")[1]: float(line.split("\t")[2]) for line in reply.text.splitlines()}

    by_default = distances()
    assert by_default.keys() == exact.keys()
    assert all(abs(by_default[pid] - exact[pid]) < 2e-6 for pid in exact)
    index_only = distances(vector_search_with_rescoring="0")  # the client's setting wins
    assert max(abs(index_only[pid] - exact[pid]) for pid in index_only) > 1e-5
    wider = distances(hnsw_candidate_list_size_for_search="512")
    assert wider.keys() == exact.keys()


REFUSED = [
    "INSERT INTO raw.photos (photo_id) VALUES ('x')",
    "CREATE TABLE raw.evil (a Int32) ENGINE = Memory",
    "DROP TABLE analytics.photos",
    "ALTER TABLE raw.photos DELETE WHERE 1",
    "TRUNCATE TABLE raw.conversions",
    "RENAME TABLE raw.photos TO raw.gone",
    "OPTIMIZE TABLE raw.photos FINAL",
    "SYSTEM FLUSH LOGS",
    "SYSTEM SHUTDOWN",
    "KILL QUERY WHERE 1",
    "SET readonly = 0",
    "SELECT 1 INTO OUTFILE '/tmp/bildsuche-serve-outfile'",
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')",
    "SELECT * FROM python('engine')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "CREATE TEMPORARY TABLE t (a Int32)",
    "DETACH TABLE raw.photos",
    "GRANT ALL ON *.* TO default",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_writes_ddl_and_escapes_are_refused(served: Served, sql: str) -> None:
    reply = post(served, sql)
    assert reply.status_code in (400, 403), reply.text
    assert reply.headers["X-ClickHouse-Exception-Code"] in ("164", "62")
    assert re.match(
        r"^Code: (164|62)\. DB::Exception: .+ \((READONLY|SYNTAX_ERROR)\) \(version [\d.]+\)\n$", reply.text
    )
    assert not Path("/tmp/bildsuche-serve-outfile").exists()
    assert post(served, "SELECT count() FROM raw.photos").text == f"{served.expected['photos'][0][0]}\n"


@pytest.mark.parametrize(
    "sql,code",
    [
        ("SELEC 1", "62"),
        ("SELECT 1; DROP TABLE raw.photos", "62"),
        ("SELECT ';' AS a; SELECT 2", "62"),
        ("SELECT * FROM raw.nope", "60"),
        ("SELECT nope()", "46"),
        ("", "62"),
    ],
)
def test_malformed_queries_get_clickhouse_errors(served: Served, sql: str, code: str) -> None:
    reply = post(served, sql)
    assert reply.status_code >= 400
    assert reply.headers["X-ClickHouse-Exception-Code"] == code
    assert reply.text.startswith(f"Code: {code}. DB::Exception: ")


def test_statement_with_semicolon_inside_a_string_runs(served: Served) -> None:
    assert post(served, "SELECT 'a;b' -- trailing; comment\n;").text == "a;b\n"


def test_bad_settings_and_raw_garbage_leave_the_server_serving(served: Served) -> None:
    assert (
        post(served, "SELECT 1", **{"max_threads; DROP TABLE x": "1"}).headers["X-ClickHouse-Exception-Code"] == "115"
    )
    assert post(served, "SELECT 1", no_such_setting="1").headers["X-ClickHouse-Exception-Code"] == "115"
    assert requests.post(served.url, data=b"x" * (2 << 20), timeout=30).status_code == 413
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
        raw.sendall(b"\x00\xffGARBAGE / NOT-HTTP\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.")
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
        raw.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert b" 400 " in raw.recv(200)
    assert requests.get(f"{served.url}/ping", timeout=10).text == "Ok.\n"
    assert post(served, "SELECT 42").text == "42\n"


def test_concurrent_clients_get_correct_answers(served: Served) -> None:
    errors: list[BaseException] = []
    expected = served.expected["top_k"]

    def worker() -> None:
        try:
            client = clickhouse_connect.get_client(host="127.0.0.1", port=served.port)
            for _ in range(15):
                rows = client.query("SELECT rank, photo_id, dist FROM analytics.top_k_neighbours ORDER BY rank")
                assert rows.result_rows == expected
            client.close()
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]


def test_store_is_held_while_serving(served: Served) -> None:
    with pytest.raises(StoreUnavailableError, match=f"is open in process {served.process.pid}"):
        open_client("embedded", path=served.store)


def test_password_limits_and_time_limit(tmp_path: Path, served: Served) -> None:
    stop(served.process)  # one process per store: this test runs its own server on it
    process, port = start_serve(
        served.store, "--password", "s3cret", "--max-result-rows", "5000", "--max-execution-time", "1"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        denied = requests.post(url, data=b"SELECT 1", timeout=30)
        assert denied.status_code == 403 and denied.headers["X-ClickHouse-Exception-Code"] == "516"
        basic = base64.b64encode(b"default:s3cret").decode()
        assert (
            requests.post(url, data=b"SELECT 1", headers={"Authorization": f"Basic {basic}"}, timeout=30).text == "1\n"
        )
        headers = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": "s3cret"}
        assert requests.post(url, data=b"SELECT 2", headers=headers, timeout=30).text == "2\n"
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, password="s3cret")
        assert client.command("SELECT 3") == 3
        too_many = requests.post(
            url, params={"max_result_rows": "100000"}, data=b"SELECT * FROM numbers(10000)", headers=headers, timeout=30
        )
        assert too_many.headers["X-ClickHouse-Exception-Code"] == "396"
        started = time.monotonic()
        slow = requests.post(url, data=b"SELECT count() FROM numbers(100000000000)", headers=headers, timeout=60)
        assert slow.headers["X-ClickHouse-Exception-Code"] == "159"
        assert time.monotonic() - started < 20
        client.close()
    finally:
        stop(process)
    served.process, served.port = start_serve(served.store)
    served.url = f"http://127.0.0.1:{served.port}"


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bildsuche.cli", "serve", "--path", str(tmp_path / "none"), "--port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 1
    assert "holds no embedded store" in done.stderr and "Traceback" not in done.stderr
