"""Image server faults: each photo is fetched, or fails with the reason that names its fault.

Transient faults (5xx, 429, resets, timeouts, refused connections) are retried
a bounded number of times; permanent ones (404, wrong type, too large, empty,
redirect loops) fail at once.
"""

from __future__ import annotations

import dataclasses
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from imageserver import ImageServer, closed_port_url, image_server
from python_embed.build import BuildOptions, build
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import FetchConfig, Fetcher, FetchError, ImageCache, _retry_after

RETRIES = 3
CONFIG = FetchConfig(
    connect_timeout=1.0,
    read_timeout=0.4,
    total_timeout=1.0,
    retries=RETRIES,
    backoff=0.01,
    max_backoff=0.05,
    max_bytes=64 * 1024,
)
ATTEMPTS = RETRIES + 1

# kind -> (reason, or None when the photo arrives; requests the server sees)
OUTCOMES: dict[str, tuple[str | None, int]] = {
    "ok": (None, 1),
    "flaky": (None, 3),
    "busy": (None, 2),
    "busydate": (None, 2),
    "burst2": (None, 3),  # a retry to spare: a loaded machine may time one attempt out
    "redirect": (None, 1),
    "redirect3": (None, 1),
    "octet": (None, 1),
    "notype": (None, 1),
    "svg": (None, 1),  # an image type: the decoder refuses it (see test_build_accounts_for_every_fault)
    "truncated": (None, 1),  # likewise
    "burst9": ("http_500", ATTEMPTS),
    "always503": ("http_503", ATTEMPTS),
    "busylong": ("http_429", ATTEMPTS),
    "404": ("http_404", 1),
    "html": ("not_image", 1),
    "textjpeg": ("not_image", 1),
    "empty": ("empty", 1),
    "slow": ("timeout", ATTEMPTS),
    "stall": ("timeout", ATTEMPTS),
    "drip": ("timeout", ATTEMPTS),
    "reset": ("connection", ATTEMPTS),
    "big": ("too_large", 1),
    "bigchunked": ("too_large", 1),
    "loop": ("too_many_redirects", 1),
}


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with image_server() as srv:
        srv.slow_seconds = 1.0
        srv.big_bytes = CONFIG.max_bytes
        yield srv


@pytest.mark.parametrize("kind", list(OUTCOMES))
def test_each_fault_ends_fetched_or_with_its_reason(tmp_path: Path, server: ImageServer, kind: str) -> None:
    reason, requests_seen = OUTCOMES[kind]
    fetcher = Fetcher(ImageCache(tmp_path / "cache"), CONFIG)
    url = server.url(kind, f"photo-{kind}")
    started = time.monotonic()
    if reason is None:
        path = fetcher.fetch(url)
        assert path.stat().st_size > 0
        assert fetcher.downloads == 1
    else:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(url)
        assert caught.value.reason == reason, caught.value
        assert fetcher.downloads == 0
        assert not list((tmp_path / "cache").rglob("*"))  # nothing of a failed download is kept
    # Bounded: every attempt is limited by the total timeout, every wait by max_backoff.
    assert time.monotonic() - started < ATTEMPTS * (CONFIG.total_timeout + CONFIG.max_backoff) + 2
    hits = server.hits[f"/{kind}/photo-{kind}"]
    if kind == "loop":
        assert 1 < hits <= 31  # requests' redirect limit, then given up without a retry
    else:
        assert hits == requests_seen


def test_refused_connections_are_retried_then_reported(tmp_path: Path) -> None:
    fetcher = Fetcher(ImageCache(tmp_path / "cache"), CONFIG)
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(closed_port_url())
    assert caught.value.reason == "connection"


@pytest.mark.parametrize("url", ["htp:/not a url", "http://", "ftp://example.org/x.jpg", "", "javascript:alert(1)"])
def test_unusable_urls_fail_without_a_request(tmp_path: Path, url: str) -> None:
    with pytest.raises(FetchError) as caught:
        Fetcher(ImageCache(tmp_path / "cache"), CONFIG).fetch(url)
    assert caught.value.reason == "bad_url"


def test_a_cached_photo_is_not_fetched_again(tmp_path: Path, server: ImageServer) -> None:
    cache = ImageCache(tmp_path / "cache")
    url = server.url("ok", "cached-once")
    first = Fetcher(cache, CONFIG).fetch(url)
    again = Fetcher(cache, CONFIG)
    assert again.fetch(url) == first and again.downloads == 0
    assert server.hits["/ok/cached-once"] == 1


@pytest.mark.parametrize(
    "header,low,high",
    [("0", 0, 0), ("2.5", 2.5, 2.5), ("-4", 0, 0), ("soon", None, None), ("inf", None, None), ("nan", None, None)],
)
def test_retry_after_values(header: str, low: float | None, high: float | None) -> None:
    response = requests.Response()
    response.headers["Retry-After"] = header
    wait = _retry_after(response)
    if low is None:
        assert wait is None
    else:
        assert wait is not None and low <= wait <= high  # type: ignore[operator]


def test_retry_after_as_an_http_date() -> None:
    from email.utils import formatdate

    response = requests.Response()
    response.headers["Retry-After"] = formatdate(time.time() + 5, usegmt=True)
    wait = _retry_after(response)
    assert wait is not None and 3.5 <= wait <= 5.0


def test_build_accounts_for_every_fault(tmp_path: Path, server: ImageServer, demo_model_dir: Path) -> None:
    """Through `build`: every photo is in photos.parquet or in failures.parquet, with stage and reason."""
    urls = {f"f-{kind}": server.url(kind, f"build-{kind}") for kind in OUTCOMES}
    urls["f-refused"] = closed_port_url()
    rows = "".join(f"{pid}\t{url}\n" for pid, url in urls.items())
    with zipfile.ZipFile(tmp_path / "lite.zip", "w") as zf:
        zf.writestr("lite/photos.tsv000", "photo_id\tphoto_image_url\n" + rows)
    out = tmp_path / "out"
    # Three spare attempts: here the embedder shares the cores with the downloads, and a late
    # read of a recovered photo's body must not use up the attempts the burst needs.
    roomy = dataclasses.replace(CONFIG, retries=RETRIES + 3)
    build(str(tmp_path / "lite.zip"), out, lambda: ClipEmbedder(str(demo_model_dir)), BuildOptions(fetch=roomy))

    embedded = pq.read_table(out / "photos.parquet").column("photo_id").to_pylist()
    failures = {r["photo_id"]: r for r in pq.read_table(out / "failures.parquet").to_pylist()}
    assert sorted(embedded + list(failures)) == sorted(urls)
    expected_failures = {f"f-{kind}": ("fetch", reason) for kind, (reason, _) in OUTCOMES.items() if reason}
    expected_failures["f-refused"] = ("fetch", "connection")
    expected_failures["f-svg"] = ("decode", "UnidentifiedImageError")
    expected_failures["f-truncated"] = ("decode", "OSError")
    for pid, (stage, reason) in expected_failures.items():
        assert failures[pid]["stage"] == stage, failures[pid]
        assert failures[pid]["reason"].startswith(reason), failures[pid]
    unexpected = {pid: failures[pid] for pid in failures if pid not in expected_failures}
    assert set(embedded) == set(urls) - set(expected_failures), unexpected
