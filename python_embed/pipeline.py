"""Decode photos in worker threads and embed them in batches meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from python_embed.embedder import ClipEmbedder
from python_embed.types import Embeddings, Failure, PhotoSource

Progress = Callable[[int, int], None]
"""Called as progress(photos_done, photos_total)."""


@dataclass
class EmbedResult:
    photos: list[PhotoSource] = field(default_factory=list)
    embeddings: Embeddings = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    failures: list[Failure] = field(default_factory=list)


def decode(source: PhotoSource) -> Image.Image:
    with Image.open(source.path) as img:
        img.draft("RGB", (448, 448))  # JPEG: decode at reduced scale, CLIP needs 224
        return img.convert("RGB")


def _decoded_batches(
    sources: Sequence[PhotoSource], batch_size: int, pool: ThreadPoolExecutor
) -> Iterator[list[tuple[PhotoSource, Future[Image.Image]]]]:
    # Keep one batch decoding ahead of the one being embedded.
    pending: list[tuple[PhotoSource, Future[Image.Image]]] | None = None
    for start in range(0, len(sources), batch_size):
        batch = [(s, pool.submit(decode, s)) for s in sources[start : start + batch_size]]
        if pending is not None:
            yield pending
        pending = batch
    if pending is not None:
        yield pending


def embed_sources(
    sources: Sequence[PhotoSource],
    embedder: ClipEmbedder,
    *,
    batch_size: int = 32,
    workers: int = 2,
    progress: Progress | None = None,
) -> EmbedResult:
    result = EmbedResult()
    chunks: list[Embeddings] = []
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for batch in _decoded_batches(sources, max(1, batch_size), pool):
            images, ok = [], []
            for source, future in batch:
                try:
                    images.append(future.result())
                    ok.append(source)
                except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
                    result.failures.append(Failure(source.photo_id, source.photo_image_url, "decode", str(exc)))
            if images:
                chunks.append(embedder.embed_images(images))
                result.photos.extend(ok)
            done += len(batch)
            if progress:
                progress(done, len(sources))
    result.embeddings = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dim), dtype=np.float32)
    return result
