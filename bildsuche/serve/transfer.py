"""Request bodies as they arrive: Content-Length or chunked, and Content-Encoding undone.

clickhouse-connect compresses the rows it inserts (lz4 first, then zstd, br,
gzip, deflate, whichever it has); dbt-clickhouse sends plain text.  A body is
read in pieces, so that an INSERT of millions of rows streams into the engine
in bounded memory instead of being held whole.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

CHUNK_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,8}$")
PIECE = 1 << 20


class BodyError(Exception):
    """A body that cannot be read; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
    def readline(self, size: int = ..., /) -> bytes: ...


class Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


def _zlib(wbits: int) -> Callable[[], Decompressor]:
    return lambda: zlib.decompressobj(wbits)


def _decoders() -> dict[str, Callable[[], Decompressor]]:
    decoders: dict[str, Callable[[], Decompressor]] = {
        "gzip": _zlib(16 + zlib.MAX_WBITS),
        "deflate": _zlib(zlib.MAX_WBITS),
    }
    try:
        import lz4.frame

        decoders["lz4"] = lz4.frame.LZ4FrameDecompressor
    except ImportError:
        pass
    try:
        from backports import zstd  # type: ignore[import-not-found,unused-ignore]

        decoders["zstd"] = zstd.ZstdDecompressor
    except ImportError:
        pass
    try:
        import brotli  # type: ignore[import-not-found,unused-ignore]

        decoders["br"] = brotli.Decompressor
    except ImportError:
        pass
    return decoders


DECODERS = _decoders()


def raw_pieces(rfile: Readable, headers: dict[str, str]) -> Iterator[bytes]:
    """The body's bytes as sent (``headers`` with lower-cased names)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            field = rfile.readline(1024).strip().split(b";")[0].strip()
            if not CHUNK_SIZE.match(field):  # int(..., 16) would take "-1", and read(-1) reads to the end
                raise BodyError(400, "malformed chunked body")
            length = int(field, 16)
            if length == 0:
                rfile.readline(1024)
                return
            while length:
                piece = rfile.read(min(length, PIECE))
                if not piece:
                    raise BodyError(400, "the chunked body ended early")
                length -= len(piece)
                yield piece
            rfile.readline(1024)
    declared = headers.get("content-length", "0") or "0"
    if not declared.isdigit():
        raise BodyError(400, "malformed Content-Length")
    left = int(declared)
    while left:
        piece = rfile.read(min(left, PIECE))
        if not piece:
            raise TimeoutError("the body ended early")
        left -= len(piece)
        yield piece


def pieces(rfile: Readable, headers: dict[str, str]) -> Iterator[bytes]:
    """The body, decoded when it came with a Content-Encoding."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        yield from raw_pieces(rfile, headers)
        return
    if encoding not in DECODERS:
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r}")
    decoder = DECODERS[encoding]()
    for piece in raw_pieces(rfile, headers):
        try:
            out = decoder.decompress(piece)
        except Exception as exc:  # each library has its own error type
            raise BodyError(400, f"cannot decode the {encoding} body: {exc}") from exc
        if out:
            yield out


def read_all(body: Iterator[bytes], limit: int, what: str) -> bytes:
    parts, size = [], 0
    for piece in body:
        size += len(piece)
        if size > limit:
            raise BodyError(413, f"{what} too large (more than {limit} bytes)")
        parts.append(piece)
    return b"".join(parts)
