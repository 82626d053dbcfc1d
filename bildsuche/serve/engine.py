"""Run one request's statement on the embedded store, for a reader or for the writer.

The engine is opened once and held for the server's life (and with it the
store's lock), from an empty working directory: database `default` of the
embedded engine reads names that are relative paths from there.

Every statement is first judged (policy.py) on the engine's parse of it, on a
read-only handle; the verdicts are cached by statement text (arrays of numbers
in it count as one: a top-K query with a new vector is the same statement), so
a dashboard's repeated queries and a script's top-K queries are parsed once.

Readers run on read-only handles (readonly = 1), with the server's
vector-search defaults (exact re-scored distances, `ef_search` candidates per
index search) and limits.  A request without settings of its own reuses a
pooled handle set up so once; one with settings gets a fresh handle: the
defaults, then the client's settings (which may replace the defaults), then
the limits (a client may lower them, never raise them), then readonly = 1,
in one SET; nothing a client sets outlives its request.  ClickHouse reads 0 as
"no limit" for every limit setting, so a client's value lowers a limit only
when it is a positive, finite number.

The writer runs on a fresh handle without readonly and without the readers'
limits, its rows (INSERT ... FORMAT, VALUES) streamed into the engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import chdb
from chdb.state.sqlitelike import Connection as Handle

from bildsuche import config
from bildsuche.errors import StoreUnavailableError
from bildsuche.serve import policy
from bildsuche.serve.catalog import Catalog
from bildsuche.serve.sqlscan import normalized, single_statement
from bildsuche.sqltext import identifier, string_literal
from bildsuche.store import claim_store

SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ERROR_RE = re.compile(
    r"Code: (?P<code>\d+)\. (?:DB::Exception: )?(?P<message>.*?)(?: \((?P<name>[A-Z_]+)\))?"
    r"(?: \(version [^)]*\))?\.?\s*$",
    re.S,
)
# The engine sometimes wraps an exception in one of the same code: "Code: 164. DB::Exception: Code: 164. ...".
NESTED_ERROR = re.compile(
    r"^Code: \d+\. (?:DB::Exception: )?(?P<message>.*?)(?: \([A-Z_]+\))?(?: \(version [^)]*\))?\.?$", re.S
)
# The writer's VALUES rows hold literals only: with these on, the engine would evaluate any expression in them.
WRITER_FORCED = {
    "input_format_values_interpret_expressions": "0",
    "input_format_values_deduce_templates_of_expressions": "0",
}
IGNORED_SETTINGS = frozenset({"readonly", "result_overflow_mode", "timeout_overflow_mode"})
VERDICTS_KEPT = 4096
DESCRIBE_COLUMNS = "name String, type String, default_type String, default_expression String, comment String, " \
    "codec_expression String, ttl_expression String"  # fmt: skip


@dataclass(frozen=True)
class Limits:
    max_execution_time: float = 30.0
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 * 1024 * 1024
    max_memory_usage: int = 2 * 1024 * 1024 * 1024
    max_concurrent: int = 4
    # Candidates an index search keeps (hnsw_candidate_list_size_for_search); the
    # default is the project's, var hnsw_ef_search in dbt_project.yml.
    ef_search: int = field(default_factory=config.default_ef_search)


@dataclass
class QueryResult:
    body: bytes
    format: str
    rows_read: int = 0
    bytes_read: int = 0
    rows_written: int = 0
    elapsed: float = 0.0


class EngineError(Exception):
    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


def engine_error(exc: Exception) -> EngineError:
    text = str(exc).strip()
    match = ERROR_RE.search(text)
    if not match:
        return EngineError(1001, "STD_EXCEPTION", text)
    message = match["message"].strip()
    while nested := NESTED_ERROR.match(message):
        message = nested["message"].strip()
    return EngineError(int(match["code"]), match["name"] or "UNKNOWN", message)


def _lowered(limit: float, requested: str) -> float:
    """The server's ``limit``, or the client's value when that is a real, lower limit."""
    try:
        value = float(requested)
    except ValueError:
        return limit
    return value if math.isfinite(value) and 0 < value < limit else limit


def _set_statement(settings: Iterable[tuple[str, str]]) -> str:
    return "SET " + ", ".join(f"{name} = {string_literal(value)}" for name, value in settings)


@dataclass
class Pooled:
    """A read-only handle with the server's settings, kept between requests (only its current
    database can change, and it is tracked)."""

    handle: Handle
    database: str | None = None


@dataclass(frozen=True)
class Request:
    """One statement as the HTTP layer hands it over."""

    sql: str
    default_format: str = "TabSeparated"
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    # An INSERT's rows (FORMAT data_format, or VALUES), streamed: ``sql`` is then the statement before them.
    data: Iterator[bytes] | None = None
    data_format: str | None = None


@contextlib.contextmanager
def _working_directory(path: str) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class StoreEngine:
    def __init__(self, path: Path, limits: Limits | None = None, *, create: bool = False) -> None:
        """``create``: open a new store when ``path`` holds none (a writer will fill it)."""
        self.path = claim_store(path, create=create)
        self.limits = limits or Limits()
        # Database `default` of the engine reads relative names as files of the directory it started
        # in: an empty one of its own, so that there are none (names with `/` are refused by the policy).
        self._empty_dir = tempfile.mkdtemp(prefix="bildsuche-serve-")
        try:
            with _working_directory(self._empty_dir):
                self._keeper = chdb.connect(str(self.path))
        except Exception as exc:
            shutil.rmtree(self._empty_dir, ignore_errors=True)
            raise StoreUnavailableError(f"cannot open the embedded store {self.path}: {exc}") from exc
        self._reader_slots = threading.BoundedSemaphore(self.limits.max_concurrent)
        self._writer_slots = threading.BoundedSemaphore(self.limits.max_concurrent)
        self._open_lock = threading.Lock()
        self._pool: queue.SimpleQueue[Pooled] = queue.SimpleQueue()
        self._verdicts: OrderedDict[tuple[object, ...], policy.Verdict] = OrderedDict()
        self._verdicts_lock = threading.Lock()
        row = self._keeper.query("SELECT version(), timezone()", "TSV").bytes().decode().strip().split("\t")
        self.version, self.timezone = row[0], row[1]
        self.catalog = Catalog(self._catalog_query)

    def close(self) -> None:
        while not self._pool.empty():
            self._pool.get_nowait().handle.close()
        self._keeper.close()
        shutil.rmtree(self._empty_dir, ignore_errors=True)

    # --- handles ---------------------------------------------------------------------------------------

    def _connect(self) -> Handle:
        with self._open_lock:
            return chdb.connect(str(self.path))

    def _defaults(self) -> dict[str, str]:
        # BI tools rarely let a user set engine settings: without these, the
        # neighbour views would answer with the index's bf16 distances.
        return {
            "vector_search_with_rescoring": "1",
            "hnsw_candidate_list_size_for_search": str(self.limits.ef_search),
        }

    def _reader_settings(self, requested: dict[str, str]) -> list[tuple[str, str]]:
        limits: dict[str, float] = {
            "max_execution_time": self.limits.max_execution_time,
            "max_result_rows": self.limits.max_result_rows,
            "max_result_bytes": self.limits.max_result_bytes,
            "max_memory_usage": self.limits.max_memory_usage,
        }
        defaults = self._defaults()
        applied = []
        for name, value in _checked(requested).items():
            if name in defaults:
                defaults[name] = value
            elif name in limits:
                limits[name] = _lowered(limits[name], value)
            else:
                applied.append((name, value))
        settings = list(defaults.items()) + applied
        settings += [
            (name, f"{value:g}" if name == "max_execution_time" else str(int(value))) for name, value in limits.items()
        ]
        settings += [("result_overflow_mode", "throw"), ("timeout_overflow_mode", "throw"), ("readonly", "1")]
        return settings

    @contextlib.contextmanager
    def _pooled(self) -> Iterator[Pooled]:
        try:
            pooled = self._pool.get_nowait()
        except queue.Empty:
            handle = self._connect()
            try:
                handle.query(_set_statement(self._reader_settings({})), "TSV")
            except Exception:
                handle.close()
                raise
            pooled = Pooled(handle)
        try:
            yield pooled
        finally:
            self._pool.put(pooled)

    def _catalog_query(self, sql: str) -> bytes:
        with self._pooled() as pooled:
            return bytes(pooled.handle.query(sql, "TSV").bytes())

    def photo_url(self, photo_id: str) -> str | None:
        """The stored URL of photo ``photo_id`` (raw.photos, the loader's table), None when there is none."""
        sql = "SELECT photo_image_url FROM raw.photos WHERE photo_id = {photo_id:String} LIMIT 1 FORMAT JSONCompact"
        with self._pooled() as pooled:
            try:
                rows = json.loads(pooled.handle.query(sql, "TSV", params={"photo_id": photo_id}).bytes())["data"]
            except Exception as exc:
                error = engine_error(exc)
                if error.name in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE"):
                    return None
                raise error from exc
        return str(rows[0][0]) if rows else None

    # --- judging ---------------------------------------------------------------------------------------

    def _verdict(self, statement: str, params: dict[str, str], writer: bool) -> policy.Verdict:
        text = normalized(statement)
        # `{name:Identifier}` parameters are names in the tree: then the values are part of the statement.
        bound = tuple(sorted(params.items())) if "identifier" in text.lower() else ()
        key = (writer, hashlib.blake2b(text.encode(), digest_size=20).digest(), bound)
        with self._verdicts_lock:
            cached = self._verdicts.get(key)
            if cached is not None:
                self._verdicts.move_to_end(key)
                return cached
        with self._parser(writer) as handle:
            try:
                explain = "EXPLAIN AST " + text
                ast = handle.query(explain, "TSV", params=params) if params else handle.query(explain, "TSV")
                tokens = None
                if writer:
                    formatted = handle.query(f"SELECT formatQuerySingleLine({string_literal(text)})", "TSVRaw")
                    tokens = policy.tokenize(formatted.bytes().decode("utf-8", "replace"))
            except Exception as exc:
                raise engine_error(exc) from exc
        verdict = policy.judge(ast.bytes().decode("utf-8", "replace"), writer=writer, tokens=tokens)
        with self._verdicts_lock:
            self._verdicts[key] = verdict
            while len(self._verdicts) > VERDICTS_KEPT:
                self._verdicts.popitem(last=False)
        return verdict

    @contextlib.contextmanager
    def _parser(self, writer: bool) -> Iterator[Handle]:
        """A handle to parse on: a pooled reader's (readonly = 1, as the reader's query will run), or for
        the writer a fresh one with readonly = 2, where a statement's SETTINGS clause parses and nothing
        can be written."""
        if not writer:
            with self._pooled() as pooled:
                yield pooled.handle
            return
        handle = self._connect()
        try:
            handle.query("SET readonly = 2", "TSV")
            yield handle
        finally:
            handle.close()

    # --- running ---------------------------------------------------------------------------------------

    def execute(self, request: Request, *, writer: bool = False) -> QueryResult:
        statement = request.sql if request.data is not None else single_statement(request.sql)
        if not statement.strip():
            raise EngineError(62, "SYNTAX_ERROR", "Empty query")
        slots = self._writer_slots if writer else self._reader_slots
        if not slots.acquire(timeout=self.limits.max_execution_time):
            raise EngineError(202, "TOO_MANY_SIMULTANEOUS_QUERIES", "Too many simultaneous queries")
        try:
            # An INSERT with its rows is judged as the engine reads it without them.
            judged = statement if request.data is None else f"{statement.rstrip()} FORMAT {request.data_format}"
            try:
                verdict = self._verdict(judged, request.params, writer)
            except policy.PolicyError as exc:
                raise EngineError(exc.code, exc.name, str(exc)) from exc
            answer = self._answer_from_catalog(verdict, request, writer)
            if answer is not None:
                return self._run_read(answer, request, verdict, writer)
            if writer:
                try:
                    return self._run_write(statement, request, verdict)
                finally:
                    if verdict.writes:
                        self.catalog.invalidate()
            return self._run_read(statement, request, verdict, writer)
        finally:
            slots.release()

    def _answer_from_catalog(self, verdict: policy.Verdict, request: Request, writer: bool) -> str | None:
        """A statement serve answers in the engine's stead, or None; raises for what is no table here."""
        database = request.database or "default"
        for name in verdict.views:
            if not self.catalog.is_view(name, database):
                error = policy.refused(f"table function {name}() is not allowed", writer)
                raise EngineError(error.code, error.name, str(error))
        if verdict.missing_table is not None:
            if verdict.kind.startswith("ExistsTable"):
                return "SELECT toUInt8(0) AS result"
            raise EngineError(60, "UNKNOWN_TABLE", f"Table {verdict.missing_table} does not exist")
        if verdict.describe is not None:
            columns = self.catalog.parameterized_columns(verdict.describe, database)
            if columns is not None:
                rows = ", ".join(
                    f"({string_literal(name)}, {string_literal(kind)}, '', '', '', '', '')" for name, kind in columns
                )
                return f"SELECT * FROM values({string_literal(DESCRIBE_COLUMNS)}, {rows})"
        return None

    def _prepare(self, handle: Handle, settings: list[tuple[str, str]], database: str | None) -> None:
        try:
            if settings:
                handle.query(_set_statement(settings), "TSV")
            if database:
                handle.query("USE " + identifier(database), "TSV")
        except Exception as exc:
            raise engine_error(exc) from exc

    def _query(self, handle: Handle, sql: str, fmt: str, params: dict[str, str]) -> QueryResult:
        started = time.perf_counter()
        try:
            result = handle.query(sql, fmt, params=params) if params else handle.query(sql, fmt)
        except Exception as exc:
            raise engine_error(exc) from exc
        return QueryResult(
            body=bytes(result.bytes()),
            format=fmt,
            rows_read=int(result.rows_read()),
            bytes_read=int(result.bytes_read()),
            rows_written=int(result.rows_written()),
            elapsed=time.perf_counter() - started,
        )

    def _run_read(self, sql: str, request: Request, verdict: policy.Verdict, writer: bool) -> QueryResult:
        fmt = verdict.output_format or request.default_format
        if writer or request.settings:
            settings = self._writer_settings(request.settings) if writer else self._reader_settings(request.settings)
            handle = self._connect()
            try:
                self._prepare(handle, settings, request.database)
                return self._query(handle, sql, fmt, request.params)
            finally:
                handle.close()
        with self._pooled() as pooled:
            if request.database != pooled.database:
                self._prepare(pooled.handle, [], request.database or "default")
                pooled.database = request.database
            return self._query(pooled.handle, sql, fmt, request.params)

    def _writer_settings(self, requested: dict[str, str]) -> list[tuple[str, str]]:
        settings = {**self._defaults(), **_checked(requested), **WRITER_FORCED}
        for name in settings:
            if name.lower() in policy.DENIED_SETTINGS:
                raise EngineError(497, "ACCESS_DENIED", f"setting {name} is not allowed (it names a file or URL)")
        return list(settings.items())

    def _run_write(self, statement: str, request: Request, verdict: policy.Verdict) -> QueryResult:
        handle = self._connect()
        try:
            self._prepare(handle, self._writer_settings(request.settings), request.database)
            if request.data is None:
                return self._query(handle, statement, verdict.output_format or request.default_format, request.params)
            started = time.perf_counter()
            try:
                inserter = handle.send_insert(statement, request.data_format or "TabSeparated")
            except Exception as exc:
                raise engine_error(exc) from exc
            try:
                for piece in request.data:
                    inserter.append(piece)
                written = inserter.finish()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    inserter.cancel()
                if isinstance(exc, Exception) and not isinstance(exc, EngineError):
                    raise engine_error(exc) from exc
                raise
            return QueryResult(
                b"",
                request.default_format,
                rows_written=int(written.rows_written),
                elapsed=time.perf_counter() - started,
            )
        finally:
            handle.close()


def _checked(requested: dict[str, str]) -> dict[str, str]:
    """The client's settings that apply: names checked, the ones serve sets itself left out."""
    applied = {}
    for name, value in requested.items():
        if not SETTING_NAME.match(name):
            raise EngineError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
        if name.lower() in policy.DENIED_SETTINGS:
            raise EngineError(497, "ACCESS_DENIED", f"setting {name} is not allowed (it names a file or URL)")
        if name not in IGNORED_SETTINGS:
            applied[name] = value
    return applied
