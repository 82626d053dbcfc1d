"""HTTP server of `bildsuche serve`: threads on the standard library's server."""

from __future__ import annotations

import itertools
import re
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from bildsuche.serve import protocol, transfer
from bildsuche.serve.accounts import Account, Accounts, AuthenticationError
from bildsuche.serve.engine import EngineError, QueryResult, Request, StoreEngine
from bildsuche.serve.pictures import PictureNotFound, Pictures
from bildsuche.serve.querylog import Entry, QueryLog
from bildsuche.serve.sqlscan import MultiStatementError, inline_data

MAX_BODY = 1 << 20  # a reader's query text
MAX_WRITER_TEXT = 64 << 20  # a writer's statement with its rows in the body (dbt seeds); larger inserts stream
DEFAULT_TIMEOUT = 30.0
PHOTO_ROUTE = re.compile(r"^/photos/(?P<photo_id>[^/]+)\.jpg$")


class ServeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        engine: StoreEngine,
        accounts: Accounts,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        log: QueryLog | None = None,
        pictures: Pictures | None = None,
    ) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.accounts = accounts
        self.request_timeout = timeout
        self.log = log or QueryLog(None)
        self.pictures = pictures

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished, or went silent past the timeout, is no server error."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write; without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK would still hold some responses ~40 ms.
    disable_nagle_algorithm = True
    # Malformed request lines are answered with a status line and headers too.
    default_request_version = "HTTP/1.0"
    server: ServeHTTPServer
    server_version = "bildsuche"

    def setup(self) -> None:
        # The socket timeout bounds every read: a request line, headers or a body that stop
        # arriving, and a kept-alive connection left idle, end the connection after it.
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, bad headers) in ClickHouse's form."""
        self._error(code, 62, "SYNTAX_ERROR", f"Malformed HTTP request: {message or code}", close=True)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        route, _, query_string = self.path.partition("?")
        if route in ("/ping", "/replicas_status") or (self.command == "GET" and route == "/" and not query_string):
            self._discard_body()
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        photo = PHOTO_ROUTE.match(route)
        if photo and self.command == "GET":
            self._picture(unquote(photo["photo_id"]))
            return
        if route != "/":
            self._discard_body()
            self._error(404, 0, "UNKNOWN", f"no handler for {route}")
            return
        started = time.perf_counter()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            request = protocol.parse(query_string, headers)
        except protocol.BadRequest as exc:
            self._discard_body()
            self._error(protocol.status_for(exc.code), exc.code, exc.name, exc.message)
            return
        account: Account | None = None
        sql = request.query
        try:
            account = self.server.accounts.authenticate(request.user, request.password)
            engine_request, sql = self._engine_request(request, headers, account)
            result = self.server.engine.execute(engine_request, writer=account.writes)
        except AuthenticationError as exc:
            self._finish_error(request, account, sql, started, 403, exc.code, exc.name, str(exc), close=True)
            return
        except transfer.BodyError as exc:
            self._finish_error(request, account, sql, started, exc.status, 62, "SYNTAX_ERROR", str(exc), close=True)
            return
        except TimeoutError:
            self._finish_error(
                request, account, sql, started, 408, 159, "TIMEOUT_EXCEEDED", "the request body did not arrive in time",
                close=True,
            )  # fmt: skip
            return
        except (EngineError, MultiStatementError) as exc:
            code, name = exc.code, exc.name
            message = exc.message if isinstance(exc, EngineError) else str(exc)
            self._finish_error(request, account, sql, started, protocol.status_for(code), code, name, message)
            return
        except OSError:
            raise  # the client went away: nothing to answer
        except Exception as exc:  # an answer in ClickHouse's form, not a dropped connection
            message = f"{type(exc).__name__}: {exc}"
            self._finish_error(request, account, sql, started, 500, 1001, "STD_EXCEPTION", message, close=True)
            return
        self._record(request, account, sql, started, result.rows_written or result.rows_read, 0)
        self._send_result(request, result)

    def _engine_request(
        self, request: protocol.Request, headers: dict[str, str], account: Account
    ) -> tuple[Request, str]:
        """The statement (and, for an INSERT, its rows) from the `query` parameter and the body.

        As on a ClickHouse server the body follows the parameter after a line break: an
        INSERT whose FORMAT clause ends the parameter streams its rows from the body.
        """
        body: Iterator[bytes] = transfer.pieces(self.rfile, headers) if self.command == "POST" else iter(())

        def make(sql: str, rows: Iterator[bytes] | None = None, fmt: str | None = None) -> Request:
            return Request(sql, request.default_format, request.settings, request.database, request.params, rows, fmt)

        query = request.query
        if account.writes and query:
            inline = inline_data(query + "\n")
            if inline is not None and inline.offset >= len(query):
                rest = (query + "\n")[inline.offset :].encode()
                rows = itertools.chain([rest] if rest else [], body)
                return make(inline.head, rows, inline.format), query
        declared = headers.get("content-length", "")
        limit = MAX_WRITER_TEXT if account.writes else MAX_BODY
        if declared.isdigit() and int(declared) > limit:
            raise transfer.BodyError(413, "query text too large")
        raw = transfer.read_all(body, limit, "query text")
        text = (query.encode() + b"\n" + raw) if query and raw else (query.encode() or raw)
        if account.writes:
            inline = inline_data(text.decode("latin-1"))  # byte offsets; the statement's own text is decoded below
            if inline is not None:
                head = text[: len(inline.head.encode("latin-1"))].decode("utf-8", "replace")
                data = iter([text[inline.offset :]])
                return make(head, data, inline.format), f"{head.rstrip()} FORMAT {inline.format} …"
        sql = text.decode("utf-8", "replace")
        return make(sql), sql

    def _discard_body(self) -> None:
        """Read what a request we do not answer from its body sent, so the connection can serve the next one."""
        if self.command != "POST":
            return
        try:
            transfer.read_all(transfer.raw_pieces(self.rfile, {k.lower(): v for k, v in self.headers.items()}),
                              MAX_BODY, "body")  # fmt: skip
        except (transfer.BodyError, TimeoutError):
            self.close_connection = True

    def _record(
        self, request: protocol.Request, account: Account | None, sql: str, started: float, rows: int, code: int
    ) -> None:
        user = account.name if account else request.user
        entry = Entry(user, request.query_id, sql, rows, time.perf_counter() - started, code)
        self.server.log.record(entry, writer=bool(account and account.writes))

    def _finish_error(
        self,
        request: protocol.Request,
        account: Account | None,
        sql: str,
        started: float,
        status: int,
        code: int,
        name: str,
        message: str,
        close: bool = False,
    ) -> None:
        self._record(request, account, sql, started, 0, code)
        # A writer's rows may still be on their way: the connection cannot serve another request.
        self._error(status, code, name, message, request.query_id, close=close or bool(account and account.writes))

    def _send_result(self, request: protocol.Request, result: QueryResult) -> None:
        engine = self.server.engine
        self._send(
            200,
            result.body,
            {
                "Content-Type": protocol.content_type(result.format),
                "X-ClickHouse-Format": result.format,
                "X-ClickHouse-Query-Id": request.query_id,
                "X-ClickHouse-Timezone": engine.timezone,
                "X-ClickHouse-Server-Display-Name": "bildsuche",
                "X-ClickHouse-Summary": protocol.summary(
                    result.rows_read, result.bytes_read, result.rows_written, result.elapsed
                ),
            },
        )

    def _picture(self, photo_id: str) -> None:
        pictures = self.server.pictures
        if pictures is None:
            self._error(404, 0, "UNKNOWN", "serve was started without --pictures: it hands out no pictures")
            return
        try:
            data = pictures.jpeg(photo_id)
        except PictureNotFound as exc:
            self._error(404, 0, "UNKNOWN", f"no picture of photo {photo_id!r}: {exc}")
            return
        except EngineError as exc:
            self._error(protocol.status_for(exc.code), exc.code, exc.name, exc.message)
            return
        self._send(200, data, {"Content-Type": "image/jpeg", "Cache-Control": "max-age=3600"})

    def _error(
        self, status: int, code: int, name: str, message: str, query_id: str | None = None, close: bool = False
    ) -> None:
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(code),
            "X-ClickHouse-Server-Display-Name": "bildsuche",
        }
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        if close:
            headers["Connection"] = "close"
            self.close_connection = True
        self._send(status, protocol.error_body(code, name, message, self.server.engine.version), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        # One write for the status line, the headers and the body.
        lines = [f"{self.protocol_version} {status} {self.responses.get(status, ('',))[0]}"]
        lines += [f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head if self.command == "HEAD" else head + body)


def make_server(
    engine: StoreEngine,
    accounts: Accounts,
    host: str = "127.0.0.1",
    port: int = 8123,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    log: QueryLog | None = None,
    pictures: Pictures | None = None,
) -> ServeHTTPServer:
    return ServeHTTPServer((host, port), engine, accounts, timeout=timeout, log=log, pictures=pictures)
