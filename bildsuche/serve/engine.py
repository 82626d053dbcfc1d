"""Run one read-only query on the embedded store.

The engine is opened once and held for the server's life (and with it the
store's lock).  Every request gets a fresh engine handle, so nothing a client
sets outlives its request: the server's vector-search defaults (exact
re-scored distances, `ef_search` candidates per index search) are applied
first, then the client's settings (which may replace those defaults), then
the server's limits (a client may lower them, not raise them), then
readonly = 1, then the statement passes the policy checks and runs.

ClickHouse reads 0 as "no limit" for every limit setting, so a client's value
lowers a limit only when it is a positive, finite number; any other value
leaves the server's limit in force.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import chdb

from bildsuche import config
from bildsuche.errors import StoreUnavailableError
from bildsuche.serve import policy
from bildsuche.sqltext import identifier, string_literal
from bildsuche.store import claim_store

SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ERROR_RE = re.compile(
    r"Code: (?P<code>\d+)\. (?:DB::Exception: )?(?P<message>.*?)(?: \((?P<name>[A-Z_]+)\))?\s*$", re.S
)
# The engine sometimes wraps an exception in one of the same code: "Code: 164. DB::Exception: Code: 164. ...".
NESTED_ERROR = re.compile(
    r"^Code: \d+\. (?:DB::Exception: )?(?P<message>.*?)(?: \([A-Z_]+\))?(?: \(version [^)]*\))?\.?$", re.S
)
FORMAT_LINE = re.compile(r"^ Identifier (?P<format>\w+)$", re.M)


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
    rows_read: int
    bytes_read: int
    elapsed: float


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


class ReadOnlyEngine:
    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        self.path = claim_store(path)
        self.limits = limits or Limits()
        try:
            self._keeper = chdb.connect(str(self.path))
        except Exception as exc:
            raise StoreUnavailableError(f"cannot open the embedded store {self.path}: {exc}") from exc
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent)
        self._open_lock = threading.Lock()
        row = self._keeper.query("SELECT version(), timezone()", "TSV").bytes().decode().strip().split("\t")
        self.version, self.timezone = row[0], row[1]

    def close(self) -> None:
        self._keeper.close()

    def _settings(self, requested: dict[str, str]) -> list[tuple[str, str]]:
        limits: dict[str, float] = {
            "max_execution_time": self.limits.max_execution_time,
            "max_result_rows": self.limits.max_result_rows,
            "max_result_bytes": self.limits.max_result_bytes,
            "max_memory_usage": self.limits.max_memory_usage,
        }
        # BI tools rarely let a user set engine settings: without these, the
        # neighbour views would answer with the index's bf16 distances.
        defaults = {
            "vector_search_with_rescoring": "1",
            "hnsw_candidate_list_size_for_search": str(self.limits.ef_search),
        }
        applied = []
        for name, value in requested.items():
            if not SETTING_NAME.match(name):
                raise EngineError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
            if name in ("readonly", "result_overflow_mode", "timeout_overflow_mode"):
                continue
            if name in defaults:
                defaults[name] = value
                continue
            if name in limits:
                limits[name] = _lowered(limits[name], value)
                continue
            applied.append((name, value))
        applied = list(defaults.items()) + applied
        applied += [
            (name, f"{value:g}" if name == "max_execution_time" else str(int(value))) for name, value in limits.items()
        ]
        applied.append(("result_overflow_mode", "throw"))
        applied.append(("timeout_overflow_mode", "throw"))
        return applied

    @staticmethod
    def _require_view(handle: chdb.state.sqlitelike.Connection, name: str) -> None:
        """Allow `name(...)` in table position only when it is a view of the store."""
        database, _, table = name.rpartition(".")
        where = f"database = {string_literal(database)}" if database else "database = currentDatabase()"
        found = handle.query(
            f"SELECT count() FROM system.tables WHERE {where} AND name = {string_literal(table)} AND engine = 'View'",
            "TSV",
        ).bytes()
        if found.strip() != b"1":
            raise EngineError(164, "READONLY", f"table function {name}() is not allowed on a read-only endpoint")

    def execute(
        self,
        sql: str,
        default_format: str,
        *,
        settings: dict[str, str] | None = None,
        database: str | None = None,
        params: dict[str, str] | None = None,
    ) -> QueryResult:
        statement = policy.single_statement(sql)
        if not statement.strip():
            raise EngineError(62, "SYNTAX_ERROR", "Empty query")
        if not self._slots.acquire(timeout=self.limits.max_execution_time):
            raise EngineError(202, "TOO_MANY_SIMULTANEOUS_QUERIES", "Too many simultaneous queries")
        try:
            with self._open_lock:
                handle = chdb.connect(str(self.path))
            try:
                return self._run(handle, statement, default_format, settings or {}, database, params or {})
            finally:
                handle.close()
        finally:
            self._slots.release()

    def _parse(self, statement: str, params: dict[str, str]) -> str:
        """`EXPLAIN AST` of ``statement``, on a handle of its own that is read-only first.

        Parsed apart from the query's handle: the limits set there would count EXPLAIN's own
        output rows, and readonly = 1, set there last, would forbid setting them.  Read-only
        here too, so that text the statement scan misjudged could still write nothing.
        """
        with self._open_lock:
            handle = chdb.connect(str(self.path))
        try:
            handle.query("SET readonly = 1", "TSV")
            explain = "EXPLAIN AST " + statement
            result = handle.query(explain, "TSV", params=params) if params else handle.query(explain, "TSV")
            return str(result.bytes().decode("utf-8", "replace"))
        except Exception as exc:
            raise engine_error(exc) from exc
        finally:
            handle.close()

    def _run(
        self,
        handle: chdb.state.sqlitelike.Connection,
        statement: str,
        default_format: str,
        settings: dict[str, str],
        database: str | None,
        params: dict[str, str],
    ) -> QueryResult:
        applied = self._settings(settings)
        ast = self._parse(statement, params)
        try:
            called = policy.check(ast)
        except policy.PolicyError as exc:
            raise EngineError(exc.code, exc.name, str(exc)) from exc
        try:
            handle.query("SET " + ", ".join(f"{name} = {string_literal(value)}" for name, value in applied), "TSV")
            if database:
                handle.query("USE " + identifier(database), "TSV")
            handle.query("SET readonly = 1", "TSV")
            for name in called:
                self._require_view(handle, name)
        except EngineError:
            raise
        except Exception as exc:
            raise engine_error(exc) from exc
        found = FORMAT_LINE.search(ast) if ast.startswith("Select") else None
        fmt = found["format"] if found else default_format
        started = time.perf_counter()
        try:
            result = handle.query(statement, fmt, params=params) if params else handle.query(statement, fmt)
        except Exception as exc:
            raise engine_error(exc) from exc
        return QueryResult(
            body=result.bytes(),
            format=fmt,
            rows_read=int(result.rows_read()),
            bytes_read=int(result.bytes_read()),
            elapsed=time.perf_counter() - started,
        )
