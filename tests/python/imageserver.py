"""A loopback HTTP server serving photos with the faults real CDNs show."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (200, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class ImageServer:
    """Routes: /ok/<name> an image (/okslow/ after 50 ms); /404/..; /flaky/<name> 503 twice then the image;
    /busy/<name> 429 with Retry-After once; /html/..; /truncated/..; /slow/.. (sleeps past timeouts);
    /always503/..; /empty/.."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.slow_seconds = 3.0
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
                if kind == "okslow":
                    time.sleep(0.05)
                if kind in ("ok", "okslow") or (kind == "flaky" and count > 2) or (kind == "busy" and count > 1):
                    self._send(200, "image/jpeg", body)
                elif kind == "flaky" or kind == "always503":
                    self._send(503, "text/plain", b"busy")
                elif kind == "busy":
                    self.send_response(429)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind == "html":
                    self._send(200, "text/html; charset=utf-8", b"<html>not a photo</html>")
                elif kind == "truncated":
                    self._send(200, "image/jpeg", body[: len(body) // 2])
                elif kind == "empty":
                    self._send(200, "image/jpeg", b"")
                elif kind == "slow":
                    time.sleep(server.slow_seconds)
                    self._send(200, "image/jpeg", body)
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

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
