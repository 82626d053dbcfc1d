"""Download photos: many requests in flight, retries with backoff, a disk cache.

A photo is fetched once: the bytes go into a content-addressed cache keyed by
URL, so a rerun (or a resumed build) downloads nothing twice.  Every failure
is a FetchError with a short machine-readable ``reason`` that ends up in
failures.parquet.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from bildsuche import files
from bildsuche.errors import OutputError

THUMBNAIL_QUERY = "q=75&fm=jpg&w=200&fit=max"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Object stores and some CDNs serve photos without an image type; the decoder judges those bytes.
UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


class FetchError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FetchConfig:
    thumbnail_query: str = THUMBNAIL_QUERY
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # per read: a server that goes silent this long has stalled
    total_timeout: float = 60.0  # per attempt: a server dripping bytes has stalled too
    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_bytes: int = 20 * 1024 * 1024
    user_agent: str = "bildsuche/0.1 (+python-requests)"


def thumbnail_url(url: str, query: str = THUMBNAIL_QUERY) -> str:
    """The photo URL with the thumbnail parameters (none for local files)."""
    if not query or url.startswith("file:"):
        return url
    return f"{url}{'&' if '?' in url else '?'}{query}"


class ImageCache:
    """Downloaded bytes under ``root``, one file per URL (sha256 of the URL)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.root / digest[:2] / digest

    def get(self, url: str) -> Path | None:
        path = self.path_for(url)
        return path if path.is_file() else None

    def put(self, url: str, data: bytes) -> Path:
        """Store ``data``; raises OutputError when the cache cannot be written (disk full, read-only)."""
        path = self.path_for(url)
        try:
            files.write_file(path, lambda tmp: tmp.write_bytes(data))
        except OutputError as exc:
            raise OutputError(f"cannot write to the download cache {self.root}: {exc}") from exc
        return path


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class Fetcher:
    """Thread-safe: each worker thread gets its own requests.Session."""

    def __init__(self, cache: ImageCache, config: FetchConfig | None = None) -> None:
        self.cache = cache
        self.config = config or FetchConfig()
        self._local = threading.local()
        self.downloads = 0  # network fetches that returned an image (not cache hits)
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self.config.user_agent
            self._local.session = session
        return session

    def fetch(self, url: str) -> Path:
        """A local file holding the photo at ``url`` (downloaded or cached)."""
        parts = urlsplit(url)
        if parts.scheme == "file":
            path = Path(parts.path)
            if not path.is_file():
                raise FetchError("missing_file", str(path))
            return path
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise FetchError("bad_url", repr(url))
        target = thumbnail_url(url, self.config.thumbnail_query)
        cached = self.cache.get(target)
        if cached is not None:
            return cached
        data = self._download(target)
        with self._lock:
            self.downloads += 1
        return self.cache.put(target, data)

    def _download(self, url: str) -> bytes:
        cfg = self.config
        last: FetchError | None = None
        for attempt in range(cfg.retries + 1):
            wait = min(cfg.max_backoff, cfg.backoff * (2**attempt)) * (0.5 + random.random() / 2)
            try:
                with self._session().get(url, timeout=(cfg.connect_timeout, cfg.read_timeout), stream=True) as response:
                    if response.status_code in RETRYABLE_STATUS:
                        last = FetchError(f"http_{response.status_code}", url)
                        hinted = _retry_after(response)
                        if hinted is not None:
                            wait = min(cfg.max_backoff, hinted)
                    elif response.status_code != 200:
                        raise FetchError(f"http_{response.status_code}", url)
                    else:
                        return self._read_image(response, url, time.monotonic() + cfg.total_timeout)
            except requests.Timeout as exc:
                last = FetchError("timeout", str(exc))
            except ReadTimeoutError as exc:
                last = FetchError("timeout", str(exc))
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, ProtocolError) as exc:
                last = FetchError("connection", str(exc))
            except DecodeError as exc:
                raise FetchError("bad_encoding", str(exc)) from exc
            except requests.TooManyRedirects as exc:
                raise FetchError("too_many_redirects", str(exc)) from exc
            except requests.exceptions.InvalidURL as exc:
                raise FetchError("bad_url", str(exc)) from exc
            except requests.RequestException as exc:
                raise FetchError("request", str(exc)) from exc
            if attempt < cfg.retries:
                time.sleep(wait)
        assert last is not None
        raise last

    def _read_image(self, response: requests.Response, url: str, deadline: float) -> bytes:
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/") and kind not in UNTYPED:
            raise FetchError("not_image", f"{url} is {kind}")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.config.max_bytes:
            raise FetchError("too_large", f"{declared} bytes")
        chunks, size = [], 0
        while True:
            # read1 returns what has arrived, so the deadline is checked however slowly bytes drip in
            # (iter_content would wait for each whole chunk first).
            chunk = response.raw.read1(64 * 1024, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > self.config.max_bytes:
                raise FetchError("too_large", f"over {self.config.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise requests.Timeout(f"{url}: no complete body within {self.config.total_timeout:g}s")
            chunks.append(chunk)
        if not size:
            raise FetchError("empty", url)
        return b"".join(chunks)
