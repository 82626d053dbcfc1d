"""HTTP server of `bildsuche serve`: threads on the standard library's server."""

from __future__ import annotations

import hmac
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bildsuche.serve import protocol
from bildsuche.serve.engine import EngineError, ReadOnlyEngine
from bildsuche.serve.policy import MultiStatementError

MAX_BODY = 1 << 20  # a query text, not data: writes are refused anyway
CHUNK_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,8}$")
DEFAULT_TIMEOUT = 30.0


class ServeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], engine: ReadOnlyEngine, password: str | None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.password = password
        self.request_timeout = timeout

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished, or went silent past the timeout, is no server error."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK hold every response ~40 ms.
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
        self._handle(b"")

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except TimeoutError:
            self._error(408, 159, "TIMEOUT_EXCEEDED", "the request body did not arrive in time", close=True)
            return
        if body is not None:
            self._handle(body)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                field = self.rfile.readline(1024).strip().split(b";")[0].strip()
                if not CHUNK_SIZE.match(field):  # int(..., 16) would take "-1", and read(-1) reads to the end
                    self._error(400, 62, "SYNTAX_ERROR", "malformed chunked body", close=True)
                    return None
                length = int(field, 16)
                if length == 0:
                    self.rfile.readline(1024)
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY:
                    self._error(413, 62, "SYNTAX_ERROR", "query text too large", close=True)
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline(1024)
        declared = self.headers.get("Content-Length", "0") or "0"
        if not declared.isdigit() or int(declared) > MAX_BODY:
            self._error(413, 62, "SYNTAX_ERROR", "query text too large", close=True)
            return None
        return self.rfile.read(int(declared))

    def _handle(self, body: bytes) -> None:
        path = self.path.split("?", 1)
        route, query_string = path[0], path[1] if len(path) > 1 else ""
        bare_get = self.command == "GET" and route == "/" and not query_string
        if route in ("/ping", "/replicas_status") or bare_get:
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        if route != "/":
            self._error(404, 0, "UNKNOWN", f"no handler for {route}")
            return
        try:
            request = protocol.parse(query_string, {k.lower(): v for k, v in self.headers.items()}, body)
        except protocol.BadRequest as exc:
            self._error(protocol.status_for(exc.code), exc.code, exc.name, exc.message)
            return
        engine = self.server.engine
        expected = self.server.password
        if expected is not None and not hmac.compare_digest(request.password.encode(), expected.encode()):
            self._error(403, 516, "AUTHENTICATION_FAILED", f"{request.user}: Authentication failed", request.query_id)
            return
        try:
            result = engine.execute(
                request.sql,
                request.default_format,
                settings=request.settings,
                database=request.database,
                params=request.params,
            )
        except EngineError as exc:
            self._error(protocol.status_for(exc.code), exc.code, exc.name, exc.message, request.query_id)
            return
        except MultiStatementError as exc:
            self._error(400, exc.code, exc.name, str(exc), request.query_id)
            return
        except Exception as exc:  # an answer in ClickHouse's form, not a dropped connection
            self._error(500, 1001, "STD_EXCEPTION", f"{type(exc).__name__}: {exc}", request.query_id)
            return
        self._send(
            200,
            result.body,
            {
                "Content-Type": protocol.content_type(result.format),
                "X-ClickHouse-Format": result.format,
                "X-ClickHouse-Query-Id": request.query_id,
                "X-ClickHouse-Timezone": engine.timezone,
                "X-ClickHouse-Server-Display-Name": "bildsuche",
                "X-ClickHouse-Summary": protocol.summary(result.rows_read, result.bytes_read, result.elapsed),
            },
        )

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
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_server(
    engine: ReadOnlyEngine,
    host: str = "127.0.0.1",
    port: int = 8123,
    password: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ServeHTTPServer:
    return ServeHTTPServer((host, port), engine, password, timeout)
