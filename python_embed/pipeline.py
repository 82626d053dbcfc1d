"""Fetch, decode and preprocess photos in worker threads; embed them in batches meanwhile.

Sources are consumed in order through a bounded window of in-flight work, so
memory stays flat however many photos there are, and a slow download holds up
at most one window.  Results leave through ``sink`` one batch at a time (the
build checkpoints each batch); ``embed_all`` collects them for small jobs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from python_embed.decode import DECODE_ERRORS, decode
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import Fetcher, FetchError
from python_embed.preprocess import ClipPreprocess
from python_embed.types import Embeddings, Failure, PhotoSource

Progress = Callable[[int, int], None]
"""Called as progress(photos_done, photos_total)."""

Sink = Callable[[list[PhotoSource], Embeddings, list[Failure]], None]
"""Receives each embedded batch with the failures met since the previous one."""


@dataclass
class StageTimes:
    """Seconds spent per stage; fetch and decode are summed over worker threads."""

    fetch: float = 0.0
    decode: float = 0.0
    embed: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            setattr(self, stage, getattr(self, stage) + seconds)


@dataclass
class EmbedResult:
    photos: list[PhotoSource] = field(default_factory=list)
    embeddings: Embeddings = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    failures: list[Failure] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)


def prepare(
    source: PhotoSource, fetcher: Fetcher | None, preprocess: ClipPreprocess, times: StageTimes
) -> NDArray[np.float32] | Failure:
    started = time.perf_counter()
    try:
        if source.path:
            path = source.path
        elif fetcher is None:
            return Failure(source.photo_id, source.photo_image_url, "fetch", "no fetcher for remote photos")
        else:
            path = str(fetcher.fetch(source.photo_image_url))
    except FetchError as exc:
        return Failure(source.photo_id, source.photo_image_url, "fetch", str(exc))
    finally:
        times.add("fetch", time.perf_counter() - started)
    started = time.perf_counter()
    try:
        return preprocess(decode(path, preprocess))
    except DECODE_ERRORS as exc:
        return Failure(source.photo_id, source.photo_image_url, "decode", f"{type(exc).__name__}: {exc}")
    finally:
        times.add("decode", time.perf_counter() - started)


def embed_sources(
    sources: Sequence[PhotoSource],
    embedder: ClipEmbedder,
    sink: Sink,
    *,
    fetcher: Fetcher | None = None,
    batch_size: int = 32,
    workers: int = 8,
    progress: Progress | None = None,
    times: StageTimes | None = None,
) -> StageTimes:
    times = times or StageTimes()
    batch_size = max(1, batch_size)
    window = max(2 * batch_size, 4 * workers)
    pending: deque[tuple[PhotoSource, Future[NDArray[np.float32] | Failure]]] = deque()
    photos: list[PhotoSource] = []
    pixels: list[NDArray[np.float32]] = []
    failures: list[Failure] = []
    done = 0

    def flush() -> None:
        started = time.perf_counter()
        embeddings = embedder.embed_pixels(np.stack(pixels)) if pixels else np.zeros((0, embedder.dim), np.float32)
        times.add("embed", time.perf_counter() - started)
        sink(list(photos), embeddings, list(failures))
        photos.clear()
        pixels.clear()
        failures.clear()

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="prepare") as pool:
        queued = iter(sources)
        for source in queued:
            pending.append((source, pool.submit(prepare, source, fetcher, embedder.preprocess, times)))
            if len(pending) >= window:
                break
        while pending:
            source, future = pending.popleft()
            next_source = next(queued, None)
            if next_source is not None:
                pending.append((next_source, pool.submit(prepare, next_source, fetcher, embedder.preprocess, times)))
            outcome = future.result()
            if isinstance(outcome, Failure):
                failures.append(outcome)
            else:
                photos.append(source)
                pixels.append(outcome)
            done += 1
            if len(pixels) >= batch_size:
                flush()
            if progress:
                progress(done, len(sources))
    if pixels or failures:
        flush()
    return times


def embed_all(
    sources: Sequence[PhotoSource],
    embedder: ClipEmbedder,
    *,
    fetcher: Fetcher | None = None,
    batch_size: int = 32,
    workers: int = 8,
    progress: Progress | None = None,
) -> EmbedResult:
    """embed_sources with every batch kept in memory: for samples and tests."""
    result = EmbedResult()
    chunks: list[Embeddings] = []

    def collect(batch: list[PhotoSource], embeddings: Embeddings, failed: list[Failure]) -> None:
        result.photos.extend(batch)
        chunks.append(embeddings)
        result.failures.extend(failed)

    result.times = embed_sources(
        sources, embedder, collect, fetcher=fetcher, batch_size=batch_size, workers=workers, progress=progress
    )
    result.embeddings = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dim), dtype=np.float32)
    return result
