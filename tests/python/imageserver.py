"""A loopback HTTP server serving photos with the faults real CDNs show."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150"><rect width="200" height="150"/></svg>'


REDIRECTS = {
    "redirect": "/ok/",
    "redirect3": "/redirect2/",
    "redirect2": "/redirect1/",
    "redirect1": "/ok/",
    "loop": "/loop/",
}


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (200, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def closed_port_url(path: str = "/ok/refused") -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class ImageServer:
    """Routes, ``/<kind>/<name>``:

    ok (an image), okslow (after 50 ms), 404, flaky (503 twice, then the image), busy (429 with
    Retry-After: 0 once), busydate (429 with an HTTP-date Retry-After once), busylong (429 with
    Retry-After: 3600, always), burst2 / burst9 (500 two / nine times, then the image), always503,
    html (text/html), textjpeg (image bytes as text/plain), octet (image bytes as
    application/octet-stream), notype (no Content-Type), svg (image/svg+xml), truncated (half a JPEG),
    empty (zero bytes), slow (headers after ``slow_seconds``), stall (headers and half the body,
    then ``slow_seconds`` of silence), drip (one byte every 50 ms), reset (half the body, then a
    TCP reset), big (declares ``big_bytes``), bigchunked (chunked, past ``big_bytes``), redirect
    (302 to ok), redirect3 (three hops to ok), loop (302 to itself).
    """

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.slow_seconds = 3.0
        self.big_bytes = 1 << 20
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits[path] += 1
                    count = server.hits[path]
                kind, _, name = path.strip("/").partition("/")
                seed = sum(name.encode()) % 200
                body = jpeg((seed, 255 - seed, (seed * 7) % 255))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._route(kind, name, count, body)

            def _route(self, kind: str, name: str, count: int, body: bytes) -> None:
                if kind == "okslow":
                    time.sleep(0.05)
                recovered = {"flaky": 2, "busy": 1, "busydate": 1, "burst2": 2, "burst9": 9}
                if kind in ("ok", "okslow") or (kind in recovered and count > recovered[kind]):
                    self._send(200, "image/jpeg", body)
                elif kind in ("flaky", "always503"):
                    self._send(503, "text/plain", b"busy")
                elif kind.startswith("burst"):
                    self._send(500, "text/plain", b"oops")
                elif kind in ("busy", "busydate", "busylong"):
                    after = {"busy": "0", "busydate": formatdate(time.time() + 1, usegmt=True), "busylong": "3600"}
                    self._send(429, "text/plain", b"slow down", {"Retry-After": after[kind]})
                elif kind == "html":
                    self._send(200, "text/html; charset=utf-8", b"<html>not a photo</html>")
                elif kind == "textjpeg":
                    self._send(200, "text/plain", body)
                elif kind == "octet":
                    self._send(200, "application/octet-stream", body)
                elif kind == "notype":
                    self._send(200, None, body)
                elif kind == "svg":
                    self._send(200, "image/svg+xml", SVG)
                elif kind == "truncated":
                    self._send(200, "image/jpeg", body[: len(body) // 2])
                elif kind == "empty":
                    self._send(200, "image/jpeg", b"")
                elif kind == "slow":
                    time.sleep(server.slow_seconds)
                    self._send(200, "image/jpeg", body)
                elif kind in ("stall", "reset", "drip"):
                    self._partial(kind, body)
                elif kind == "big":
                    self._head(200, "image/jpeg", {"Content-Length": str(server.big_bytes + 1)})
                    self.wfile.write(body)
                    self.close_connection = True
                elif kind == "bigchunked":
                    self._chunked(body, server.big_bytes + len(body))
                elif kind in REDIRECTS:
                    self._send(302, "text/plain", b"", {"Location": REDIRECTS[kind] + name})
                else:
                    self._send(404, "text/plain", b"not found")

            def _head(self, status: int, kind: str | None, headers: dict[str, str]) -> None:
                self.send_response(status)
                if kind:
                    self.send_header("Content-Type", kind)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()

            def _send(self, status: int, kind: str | None, body: bytes, headers: dict[str, str] | None = None) -> None:
                self._head(status, kind, {"Content-Length": str(len(body)), **(headers or {})})
                self.wfile.write(body)

            def _partial(self, kind: str, body: bytes) -> None:
                self._head(200, "image/jpeg", {"Content-Length": str(len(body))})
                if kind == "drip":
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                if kind == "stall":
                    time.sleep(server.slow_seconds)
                    return
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            def _chunked(self, body: bytes, total: int) -> None:
                self.protocol_version = "HTTP/1.1"
                self._head(200, "image/jpeg", {"Transfer-Encoding": "chunked", "Connection": "close"})
                sent = 0
                while sent < total:
                    self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")
                    sent += len(body)
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, kind: str, name: str) -> str:
        return f"{self.base}/{kind}/{name}"


@contextmanager
def image_server() -> Iterator[ImageServer]:
    server = ImageServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
