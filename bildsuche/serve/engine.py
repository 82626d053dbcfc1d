"""Run one read-only query on the embedded store.

The engine is opened once and held for the server's life (and with it the
store's lock).  Every request gets a fresh engine handle, so nothing a client
sets outlives its request: the client's settings are applied first, then the
server's limits (a client may lower them, not raise them), then readonly = 1,
then the statement passes the policy checks and runs.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import chdb
from dbt.adapters.chdb.engine import lock_holder, locked_error, resolve_path

from bildsuche.errors import StoreUnavailableError
from bildsuche.serve import policy

SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ERROR_RE = re.compile(
    r"Code: (?P<code>\d+)\. (?:DB::Exception: )?(?P<message>.*?)(?: \((?P<name>[A-Z_]+)\))?\s*$", re.S
)
FORMAT_LINE = re.compile(r"^ Identifier (?P<format>\w+)$", re.M)


@dataclass(frozen=True)
class Limits:
    max_execution_time: float = 30.0
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 * 1024 * 1024
    max_concurrent: int = 4


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
    return EngineError(int(match["code"]), match["name"] or "UNKNOWN", match["message"].strip())


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ReadOnlyEngine:
    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        self.path = resolve_path(path)
        self.limits = limits or Limits()
        if not (self.path / "metadata").is_dir():
            raise StoreUnavailableError(f"{self.path} holds no embedded store (run `bildsuche demo` or dbt first)")
        pid = lock_holder(self.path)
        if pid is not None:
            raise StoreUnavailableError(str(locked_error(self.path, pid)))
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
        limits = {
            "max_execution_time": self.limits.max_execution_time,
            "max_result_rows": self.limits.max_result_rows,
            "max_result_bytes": self.limits.max_result_bytes,
        }
        applied = []
        for name, value in requested.items():
            if not SETTING_NAME.match(name):
                raise EngineError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
            if name in ("readonly", "result_overflow_mode"):
                continue
            if name in limits:
                try:
                    limits[name] = min(limits[name], type(limits[name])(float(value)))
                except ValueError as exc:
                    raise EngineError(27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", f"bad value for {name}") from exc
                continue
            applied.append((name, value))
        applied += [(name, str(value)) for name, value in limits.items()]
        applied.append(("result_overflow_mode", "throw"))
        applied.append(("timeout_overflow_mode", "throw"))
        return applied

    @staticmethod
    def _require_view(handle: chdb.state.sqlitelike.Connection, name: str) -> None:
        """Allow `name(...)` in table position only when it is a view of the store."""
        database, _, table = name.rpartition(".")
        where = f"database = {_quote(database)}" if database else "database = currentDatabase()"
        found = handle.query(
            f"SELECT count() FROM system.tables WHERE {where} AND name = {_quote(table)} AND engine = 'View'", "TSV"
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
        try:
            # Parsing first: the limits below would count EXPLAIN's own output rows.
            explain = "EXPLAIN AST " + statement
            ast_result = handle.query(explain, "TSV", params=params) if params else handle.query(explain, "TSV")
            ast = ast_result.bytes().decode("utf-8", "replace")
        except Exception as exc:
            raise engine_error(exc) from exc
        try:
            called = policy.check(ast)
        except policy.PolicyError as exc:
            raise EngineError(exc.code, exc.name, str(exc)) from exc
        try:
            handle.query("SET " + ", ".join(f"{name} = {_quote(value)}" for name, value in applied), "TSV")
            if database:
                handle.query("USE `" + database.replace("\\", "\\\\").replace("`", "\\`") + "`", "TSV")
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
