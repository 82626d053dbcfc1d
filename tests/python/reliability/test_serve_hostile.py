"""The endpoint under hostile requests, for both accounts: readers stay read-only and bounded in time,
rows, bytes and memory; the writer writes the store and nothing else; the server serves on.

Every payload of the corpus goes into query parameters, settings, the
database, the query id and the format; statements try to read files, lift
the limits or write, and the writer's try to leave the store (files, URLs,
programs, other paths, SYSTEM); no answer may tell whether a file exists on
the machine; clients send broken or endless requests.  After each test the
store's fingerprint is unchanged, the server logged no error, and every
statement of the writer is in the query log.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from marts_reference import reference
from reliability.payloads import LIMIT_VALUES, SETTING_NAMES, STRINGS
from reliability.stores import FINGERPRINT_SQL, PayloadStore
from serve_helpers import server_stderr, start_serve, stop

pytestmark = pytest.mark.slow

TIME_LIMIT = 1.0
ROW_LIMIT = 5000
MEMORY_LIMIT = 256 << 20
SLOW_SQL = "SELECT count() FROM numbers(1000000000000)"
MANY_ROWS_SQL = "SELECT number FROM numbers(20000) FORMAT Null"
BIG_MEMORY_SQL = "SELECT length(groupArray(number)) FROM numbers(200000000)"
PASSWD_MARK = "root:x:0:0"
OUTFILE = Path("/tmp/bildsuche-hostile")
DISK_DIR = Path("/tmp/bildsuche-hostile-disk")
WRITER = ("writer", "hostile-writer-pw")
NEIGHBOURS_SQL = (
    "SELECT photo_id FROM analytics.neighbours(photo_id = {pid:String}, k = 3) ORDER BY rank FORMAT JSONEachRow"
)


@dataclass
class Endpoint:
    url: str
    port: int
    store: PayloadStore
    fingerprint: str
    process: object
    log: Path
    writer_ids: list[str] = field(default_factory=list)  # every query id the writer sent


def post(endpoint: Endpoint, sql: str, **params: str) -> requests.Response:
    return requests.post(endpoint.url, params=params, data=sql.encode(), timeout=60)


def post_as_writer(endpoint: Endpoint, sql: str, **params: str) -> requests.Response:
    query_id = f"hostile-{uuid.uuid4()}"
    endpoint.writer_ids.append(query_id)
    return requests.post(
        endpoint.url, params={**params, "query_id": query_id}, data=sql.encode(), auth=WRITER, timeout=60
    )


@pytest.fixture(scope="module")
def endpoint(payload_store: PayloadStore) -> Iterator[Endpoint]:
    log = payload_store.root / "hostile-serve.log"
    process, port = start_serve(
        payload_store.store,
        "--max-execution-time", str(TIME_LIMIT),
        "--max-result-rows", str(ROW_LIMIT),
        "--max-memory-usage", str(MEMORY_LIMIT),
        "--timeout", "2",
        "--writer-password", WRITER[1],
        "--log", str(log),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        fingerprint = requests.post(url, data=FINGERPRINT_SQL.encode(), timeout=60)
        assert fingerprint.status_code == 200, fingerprint.text
        endpoint = Endpoint(url, port, payload_store, fingerprint.text, process, log)
        yield endpoint
    finally:
        stop(process)
    assert "Traceback" not in server_stderr(process), server_stderr(process)
    logged = set(re.findall(r" query_id=(\S+) ", log.read_text()))
    assert not [q for q in endpoint.writer_ids if q not in logged], "writer statements missing from the log"
    assert all(
        line.count(" user=writer ") == 1 for line in log.read_text().splitlines() if " query_id=hostile-" in line
    )


@pytest.fixture(autouse=True)
def unchanged(endpoint: Endpoint) -> Iterator[None]:
    yield
    after = requests.post(endpoint.url, data=FINGERPRINT_SQL.encode(), timeout=60)
    assert after.text == endpoint.fingerprint
    assert requests.get(f"{endpoint.url}/ping", timeout=10).text == "Ok.\n"
    assert not OUTFILE.exists() and not DISK_DIR.exists()


def code(reply: requests.Response) -> str:
    return reply.headers.get("X-ClickHouse-Exception-Code", "")


def test_payloads_as_query_parameters_stay_values(endpoint: Endpoint) -> None:
    photo_ids = set(endpoint.store.data.photo_ids)
    for payload in STRINGS:
        echoed = post(endpoint, "SELECT {v:String} AS v FORMAT JSONEachRow", param_v=payload)
        neighbours = post(endpoint, NEIGHBOURS_SQL, param_pid=payload)
        if echoed.status_code == 400:
            # Parameter values are read in ClickHouse's escaped form: a bad escape, or a raw tab or line
            # break, is the client's error.
            assert any(c in payload for c in "\\\t\n\r"), (payload, echoed.text)
            assert code(echoed) == code(neighbours) and code(echoed) in ("25", "457"), (payload, echoed.text)
            continue
        assert echoed.status_code == 200, (payload, echoed.text)
        (row,) = [json.loads(line) for line in echoed.text.split("\n") if line]
        value = row["v"]
        if "\\" not in payload:
            assert value == payload
        if value in photo_ids:
            assert neighbours.status_code == 200, (payload, neighbours.text)
            got = [json.loads(line)["photo_id"] for line in neighbours.text.split("\n") if line]
            # As a set: the view orders by the index's bf16 distances, which may swap near-ties.
            assert set(got) == {pid for pid, _ in reference(endpoint.store.data, value, 3).neighbours}, payload
        else:
            assert neighbours.status_code == 200 and neighbours.text == "", (payload, neighbours.text)


def test_unknown_photos_have_no_neighbours(endpoint: Endpoint) -> None:
    # It failed with HTTP 500: "scalar subquery returned empty result" (the target's embedding).
    reply = post(endpoint, NEIGHBOURS_SQL, param_pid="no such photo")
    assert reply.status_code == 200 and reply.text == "", reply.text
    filtered = post(
        endpoint,
        "SELECT photo_id FROM analytics.filtered_neighbours(photo_id = {pid:String}, k = 3, keyword = '', colour = '', "
        "country = '', photographer = '', date_from = '', date_to = '', min_downloads = 0)",
        param_pid="no such photo",
    )
    assert filtered.status_code == 200 and filtered.text == "", filtered.text


HOSTILE_SQL = [
    "SELECT file('/etc/passwd')",
    "SELECT FILE('/etc/passwd')",
    "SELECT lower(file('/etc/passwd'))",
    "SELECT * FROM (SELECT file('/etc/passwd') AS f)",
    "SELECT * FROM view(SELECT file('/etc/passwd'))",
    "WITH file('/etc/passwd') AS f SELECT f",
    "SELECT 1 WHERE file('/etc/passwd') != ''",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "DESCRIBE TABLE file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM filesystem('/')",
    "SELECT * FROM executable('id', 'TSV', 'a String')",
    "SELECT * FROM input('a String')",
    "SELECT * FROM s3('http://127.0.0.1:9/x.csv')",
    "SELECT * FROM fileCluster('default', '/etc/passwd')",
    "SELECT * FROM python('os')",
    "SELECT * FROM numbers(3) INTO OUTFILE '/tmp/bildsuche-hostile' FORMAT CSV",
    "EXPLAIN SELECT 1 INTO OUTFILE '/tmp/bildsuche-hostile'",
    "EXPLAIN PIPELINE SELECT 1 INTO OUTFILE '/tmp/bildsuche-hostile'",
    "EXPLAIN SYNTAX SELECT 1 INTO OUTFILE '/tmp/bildsuche-hostile' TRUNCATE",
    "EXPLAIN QUERY TREE SELECT 1 INTO OUTFILE '/tmp/bildsuche-hostile'",
    "SHOW TABLES FROM raw INTO OUTFILE '/tmp/bildsuche-hostile'",
    "DESCRIBE TABLE raw.photos INTO OUTFILE '/tmp/bildsuche-hostile'",
    "EXISTS TABLE raw.photos INTO OUTFILE '/tmp/bildsuche-hostile'",
    "(SELECT 1) INTO OUTFILE '/tmp/bildsuche-hostile' COMPRESSION 'gzip'",
    "SELECT 1 SETTINGS readonly = 0",
    f"{SLOW_SQL} SETTINGS max_execution_time = 0",
    "SELECT number FROM numbers(20000) SETTINGS max_result_rows = 0",
    "BACKUP TABLE raw.photos TO File('/tmp/bildsuche-hostile')",
    "CHECK TABLE raw.photos",
    "SET max_execution_time = 0",
    "INSERT INTO FUNCTION file('/tmp/bildsuche-hostile', 'CSV', 'a Int32') VALUES (1)",
    "CREATE VIEW analytics.evil AS SELECT 1",
    "ALTER TABLE raw.photos UPDATE photo_id = 'x' WHERE 1",
    "DELETE FROM raw.photos WHERE 1",
    "EXCHANGE TABLES raw.photos AND raw.conversions",
    "ATTACH TABLE raw.evil (a Int32) ENGINE = Memory",
    "UNDROP TABLE raw.photos",
    "SELECT $$'$$; DROP TABLE raw.photos; SELECT '",
    "SELECT $q$';$q$; TRUNCATE TABLE raw.conversions; SELECT '",
    "SELECT 1 /* nested /* comment */ ' */; DROP TABLE raw.photos; SELECT '",
    "SELECT 'unterminated; DROP TABLE raw.photos",
]


@pytest.mark.parametrize("sql", HOSTILE_SQL)
def test_hostile_statements_are_refused(endpoint: Endpoint, sql: str) -> None:
    started = time.monotonic()
    reply = post(endpoint, sql)
    assert 400 <= reply.status_code < 500, reply.text
    assert code(reply) in {"164", "62", "48", "497", "60", "46", "36"}, reply.text
    assert PASSWD_MARK not in reply.text
    assert reply.text.startswith(f"Code: {code(reply)}. DB::Exception: ")
    assert reply.text.count("DB::Exception") == 1, reply.text
    assert time.monotonic() - started < TIME_LIMIT + 10
    assert not OUTFILE.exists()


def test_explain_ast_of_an_outfile_query_writes_nothing(endpoint: Endpoint) -> None:
    reply = post(endpoint, "EXPLAIN AST SELECT 1 INTO OUTFILE '/tmp/bildsuche-hostile'")
    assert reply.status_code in (200, 403), reply.text  # the AST is printed; the query in it is not run
    assert not OUTFILE.exists()


def _limits_hold(endpoint: Endpoint, values: tuple[str, ...]) -> None:
    for value in values:
        slow = post(endpoint, SLOW_SQL, max_execution_time=value)
        assert code(slow) == "159", (value, slow.text)
        many = post(endpoint, MANY_ROWS_SQL, max_result_rows=value)
        assert code(many) == "396", (value, many.text)
        big = post(endpoint, BIG_MEMORY_SQL, max_memory_usage=value)
        assert code(big) == "241", (value, big.text)
        assert post(endpoint, "SELECT 1", max_result_bytes=value).text == "1\n"


def test_limits_cannot_be_raised_or_removed(endpoint: Endpoint) -> None:
    _limits_hold(endpoint, ("0", "-1", "inf", "1e400", "x"))


@pytest.mark.full
def test_limits_cannot_be_raised_or_removed_full(endpoint: Endpoint) -> None:
    _limits_hold(endpoint, LIMIT_VALUES)


def test_limits_can_be_lowered(endpoint: Endpoint) -> None:
    assert code(post(endpoint, "SELECT number FROM numbers(200) FORMAT Null", max_result_rows="100")) == "396"
    assert post(endpoint, "SELECT number FROM numbers(200) FORMAT Null", max_result_rows="1000").status_code == 200


def test_time_limit_bounds_every_request(endpoint: Endpoint) -> None:
    for sql in (SLOW_SQL, "SELECT sleepEachRow(0.5) FROM numbers(20)", "SELECT sleep(3)"):
        started = time.monotonic()
        reply = post(endpoint, sql)
        assert reply.status_code >= 400
        assert time.monotonic() - started < TIME_LIMIT + 5, sql


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_hostile_setting_names(endpoint: Endpoint, name: str) -> None:
    reply = post(endpoint, "SELECT 1", **{name: "0"})
    if name in ("readonly",):
        assert reply.text == "1\n"  # ignored: the endpoint sets it
    else:
        assert reply.status_code == 400 and code(reply) == "115", reply.text


def test_payloads_as_setting_values_database_query_id_and_format(endpoint: Endpoint) -> None:
    for payload in STRINGS:
        setting = post(endpoint, "SELECT 1", max_threads=payload)
        assert setting.status_code in (200, 400) and PASSWD_MARK not in setting.text, (payload, setting.text)
        database = post(endpoint, "SELECT count() FROM photos", database=payload)
        assert database.status_code in (400, 404), (payload, database.text)
        query_id = post(endpoint, "SELECT 1", query_id=payload)
        assert "X-Injected" not in query_id.headers
        if payload.isascii() and payload.isprintable() and len(payload) <= 256:
            assert query_id.status_code == 200 and query_id.headers["X-ClickHouse-Query-Id"] == payload
        else:
            assert query_id.status_code == 400 and code(query_id) == "36", (payload, query_id.text)
        fmt = post(endpoint, "SELECT 1", default_format=payload)
        if payload == "NULL":
            assert fmt.status_code == 200 and fmt.text == ""  # the engine's Null format, any case
        else:
            assert fmt.status_code == 400 and code(fmt) in ("73", "36"), (payload, fmt.text)
    assert post(endpoint, "SELECT count() FROM photos", database="analytics").status_code == 200


def _raw_exchange(endpoint: Endpoint, data: bytes, wait: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=wait) as conn:
        conn.sendall(data)
        received = b""
        try:
            while chunk := conn.recv(4096):
                received += chunk
        except TimeoutError:
            pass
        return received


def test_broken_and_endless_requests_end(endpoint: Endpoint) -> None:
    negative_chunk = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nSELECT 1\r\n"
    assert b" 400 " in _raw_exchange(endpoint, negative_chunk)
    short_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nSELECT"
    assert b" 408 " in _raw_exchange(endpoint, short_body)
    started = time.monotonic()
    assert _raw_exchange(endpoint, b"POST / HTTP/1.1\r\nHost: x\r\n") == b""  # headers never finished
    assert time.monotonic() - started < 8  # closed by the server's 2 s timeout, not the client's 10 s
    silent = socket.create_connection(("127.0.0.1", endpoint.port), timeout=10)
    try:
        assert post(endpoint, "SELECT 7").text == "7\n"  # served while a silent connection is open
        assert silent.recv(10) == b""  # and the silent one is closed by the server
    finally:
        silent.close()


# --- the writer: it writes the store and nothing else ---------------------------------------------------

WRITER_ESCAPES = [
    "SELECT file('/etc/passwd')",
    "SELECT lower(FILE('/etc/passwd'))",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM `/etc/passwd`",
    "SELECT * FROM default.`/etc/passwd`",
    "SELECT 'root' IN `/etc/passwd`",
    "SELECT * FROM `../../../../../../etc/passwd`",
    "SELECT * FROM `*`",
    "SELECT hasColumnInTable('default', '/etc/passwd', 'c1')",
    "SELECT joinGet('default.`/etc/passwd`', 'c1', 1)",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')",
    "SELECT * FROM executable('id', 'TSV', 'a String')",
    "SELECT * FROM python('os')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM s3('http://127.0.0.1:9/x.csv')",
    "SELECT * FROM filesystem('/')",
    "SELECT * FROM numbers(3) INTO OUTFILE '/tmp/bildsuche-hostile' FORMAT CSV",
    "EXPLAIN SELECT 1 INTO OUTFILE '/tmp/bildsuche-hostile'",
    "INSERT INTO FUNCTION file('/tmp/bildsuche-hostile', 'CSV', 'a Int32') VALUES (1)",
    "INSERT INTO raw.photos FROM INFILE '/etc/passwd' FORMAT CSV",
    "INSERT INTO raw.photos (photo_id) SELECT * FROM `/etc/passwd`",
    "INSERT INTO raw.photos (photo_id) VALUES (file('/etc/passwd'))",
    "INSERT INTO raw.photos (photo_id) SETTINGS input_format_record_errors_file_path = '/tmp/bildsuche-hostile' "
    "FORMAT CSV\nx",
    "CREATE TABLE analytics.evil (a String) ENGINE = File(CSV, '/tmp/bildsuche-hostile')",
    "CREATE TABLE analytics.evil (a String) ENGINE = URL('http://127.0.0.1:9/x', CSV)",
    "CREATE TABLE analytics.evil (a String) ENGINE = Executable('id', TSV)",
    "CREATE TABLE analytics.evil (a String) ENGINE = S3('http://127.0.0.1:9/x.csv', 'CSV')",
    "CREATE TABLE analytics.evil AS `/etc/passwd`",
    "CREATE TABLE analytics.evil AS file('/etc/passwd', 'LineAsString')",
    "CREATE TABLE analytics.evil ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM `/etc/passwd`",
    "CREATE TABLE analytics.evil (a Int32) ENGINE = MergeTree ORDER BY a "
    "SETTINGS disk = disk(type = local, path = '/tmp/bildsuche-hostile-disk/')",
    "CREATE TABLE analytics.evil (a String DEFAULT file('/etc/passwd')) ENGINE = Memory",
    "CREATE VIEW analytics.evil AS SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')",
    "CREATE DATABASE evil ENGINE = Filesystem('/')",
    "CREATE DATABASE evil ENGINE = SQLite('/tmp/bildsuche-hostile')",
    "CREATE DICTIONARY analytics.evil (a String) PRIMARY KEY a "
    "SOURCE(FILE(path '/etc/passwd' format 'CSV')) LAYOUT(FLAT()) LIFETIME(0)",
    "ATTACH DATABASE evil ENGINE = Filesystem('/')",
    "ATTACH TABLE raw.photos",
    "DETACH TABLE raw.photos",
    "DROP DATABASE default",
    "UNDROP TABLE raw.photos",
    "BACKUP TABLE raw.photos TO File('/tmp/bildsuche-hostile')",
    "RESTORE TABLE raw.photos FROM File('/tmp/bildsuche-hostile')",
    "SYSTEM SHUTDOWN",
    "SYSTEM RELOAD CONFIG",
    "SYSTEM DROP DNS CACHE",
    "SYSTEM FLUSH LOGS",
    "KILL QUERY WHERE 1",
    "ALTER TABLE raw.photos FREEZE",
    "ALTER TABLE raw.photos MOVE PARTITION tuple() TO DISK 'default'",
    "ALTER TABLE raw.photos FETCH PARTITION tuple() FROM '/clickhouse/tables/x'",
    "GRANT ALL ON *.* TO default",
    "CREATE USER evil",
    "SET format_template_row = '/etc/passwd'",
    "SELECT 1 SETTINGS format_schema = '/etc/passwd:Message'",
    "SELECT 1 FORMAT Template SETTINGS format_template_resultset = '/etc/hostname'",
    "SELECT $$'$$; DROP TABLE raw.photos; SELECT '",
    "SELECT 1; DROP TABLE raw.photos",
]


@pytest.mark.parametrize("sql", WRITER_ESCAPES)
def test_the_writer_cannot_leave_the_store(endpoint: Endpoint, sql: str) -> None:
    reply = post_as_writer(endpoint, sql)
    assert 400 <= reply.status_code < 500, reply.text
    assert code(reply) in {"497", "164", "60", "62", "36", "344"}, reply.text
    assert reply.text.startswith(f"Code: {code(reply)}. DB::Exception: ")
    assert PASSWD_MARK not in reply.text and "\nvm" not in reply.text
    assert not OUTFILE.exists() and not DISK_DIR.exists()


@pytest.mark.parametrize(
    "name",
    ["format_schema", "format_template_resultset", "format_template_row", "output_format_schema",
     "input_format_record_errors_file_path", "format_avro_schema_registry_url", "url_base"],
)  # fmt: skip
def test_settings_naming_files_are_refused_for_both_accounts(endpoint: Endpoint, name: str) -> None:
    params = {name: "/etc/passwd", "default_format": "Template"}
    for reply in (post(endpoint, "SELECT 1", **params), post_as_writer(endpoint, "SELECT 1", **params)):
        assert reply.status_code == 403 and code(reply) == "497", reply.text
        assert PASSWD_MARK not in reply.text


def test_the_writer_can_write_and_stays_logged(endpoint: Endpoint) -> None:
    create = post_as_writer(endpoint, "CREATE TABLE analytics.writer_probe (a Int32) ENGINE = MergeTree ORDER BY a")
    assert create.status_code == 200, create.text
    try:
        assert post_as_writer(endpoint, "INSERT INTO analytics.writer_probe VALUES (1), (2)").status_code == 200
        assert post(endpoint, "SELECT sum(a) FROM analytics.writer_probe").text == "3\n"
        refused = post(endpoint, "DROP TABLE analytics.writer_probe")  # the reader still may not
        assert refused.status_code == 403 and code(refused) == "164"
    finally:
        assert post_as_writer(endpoint, "DROP TABLE analytics.writer_probe").status_code == 200


# --- database `default`: no answer tells whether a file exists on the machine ---------------------------

# Each names a table `@`; answered for a file that exists and for one that does not, the replies must be
# the same but for the name.  Relative names are read from the directory the engine started in.
PROBES = [
    "SELECT count() FROM `@`",
    "SELECT * FROM default.`@`",
    "EXISTS TABLE `@`",
    "EXISTS `@`",
    "EXISTS TABLE default.`@`",
    "DESCRIBE `@`",
    "DESCRIBE TABLE default.`@` FORMAT JSON",
    "SHOW CREATE TABLE `@`",
    "SHOW COLUMNS FROM `@`",
    "SELECT 'root' IN `@`",
    "SELECT hasColumnInTable('default', '@', 'c1')",
    "SELECT * FROM merge('default', '@')",
    "CHECK TABLE `@`",
    "OPTIMIZE TABLE `@`",
    "CREATE TABLE analytics.leak AS `@`",
    "CREATE TABLE analytics.leak ENGINE = Memory AS SELECT * FROM `@`",
]
EXISTING = {"absolute": ("/etc/passwd", "/etc/bildsuche-no-such-file"), "relative": ("pyproject.toml", "no-such.toml")}


def _answer(reply: requests.Response, name: str) -> tuple[int, str, str]:
    return reply.status_code, code(reply), reply.text.replace(name, "@")


@pytest.mark.parametrize("kind", list(EXISTING))
@pytest.mark.parametrize("writer", [False, True], ids=["default", "writer"])
def test_no_answer_tells_whether_a_file_exists(endpoint: Endpoint, kind: str, writer: bool) -> None:
    existing, missing = EXISTING[kind]
    assert kind == "relative" or Path(existing).is_file()
    assert kind == "absolute" or (Path.cwd() / existing).is_file()  # serve runs from here: the engine must not
    send = post_as_writer if writer else post
    for probe in PROBES:
        if probe.startswith(("CREATE", "OPTIMIZE")) and not writer:
            continue
        there = _answer(send(endpoint, probe.replace("@", existing)), existing)
        absent = _answer(send(endpoint, probe.replace("@", missing)), missing)
        assert there == absent, (probe, there, absent)
        assert PASSWD_MARK not in there[2]
        if probe.startswith("EXISTS"):
            assert there[:2] == (200, "") and there[2] == "0\n", (probe, there)
        elif probe.startswith("SHOW COLUMNS"):  # no rows: the engine's answer for any table it does not have
            assert there == (200, "", "") or there[1] == "60", (probe, there)
        else:
            assert there[0] >= 400, (probe, there)
    for value in (existing, missing):  # a name given as an Identifier parameter
        reply = send(endpoint, "SELECT count() FROM {t:Identifier}", param_t=value)
        assert code(reply) in (("60", "497") if writer else ("60",)), reply.text  # the writer takes no such parameters


def test_pandas_has_table_check_on_database_default(endpoint: Endpoint) -> None:
    # pandas.read_sql asks EXISTS TABLE `<the query>` first: the overlay's file layer said 1 (a glob).
    for database in ("default", "analytics"):
        reply = post(endpoint, "EXISTS TABLE `SELECT * FROM analytics.keyword_breakdown`", database=database)
        assert reply.status_code == 200 and reply.text == "0\n", reply.text
