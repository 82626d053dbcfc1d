"""HTTP server of `bildsuche serve`: threads on the standard library's server."""

from __future__ import annotations

import hmac
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bildsuche.serve import protocol
from bildsuche.serve.engine import EngineError, ReadOnlyEngine
from bildsuche.serve.policy import MultiStatementError

MAX_BODY = 1 << 20  # a query text, not data: writes are refused anyway


class ServeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: ReadOnlyEngine, password: str | None) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.password = password


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK hold every response ~40 ms.
    disable_nagle_algorithm = True
    # Malformed request lines are answered with a status line and headers too.
    default_request_version = "HTTP/1.0"
    server: ServeHTTPServer
    server_version = "bildsuche"

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, bad headers) in ClickHouse's form."""
        self._error(code, 62, "SYNTAX_ERROR", f"Malformed HTTP request: {message or code}", close=True)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is not None:
            self._handle(body)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(1024).strip()
                try:
                    length = int(line.split(b";")[0], 16)
                except ValueError:
                    self._error(400, 62, "SYNTAX_ERROR", "malformed chunked body", close=True)
                    return None
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
        request = protocol.parse(query_string, {k.lower(): v for k, v in self.headers.items()}, body)
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
    engine: ReadOnlyEngine, host: str = "127.0.0.1", port: int = 8123, password: str | None = None
) -> ServeHTTPServer:
    return ServeHTTPServer((host, port), engine, password)
