"""Saved searches: a text or an outside image, embedded by the photos' model
(seeds_loader.searches stores them for the search_results mart)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from bildsuche.dataset import SavedQuery
from bildsuche.errors import InputDataError, UsageError
from python_embed.decode import DECODE_ERRORS, decode
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import Fetcher, FetchError
from python_embed.types import Embeddings

MAX_NAME = 200

__all__ = ["MAX_NAME", "SavedQuery", "embed_query"]


def embed_query(
    embedder: ClipEmbedder, *, name: str, text: str | None = None, image: str | None = None,
    fetcher: Fetcher | None = None,
) -> SavedQuery:  # fmt: skip
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise UsageError(f"--name must be 1 to {MAX_NAME} printable characters")
    if (text is None) == (image is None):
        raise UsageError("give exactly one of --text and --image")
    if text is not None:
        if not text.strip():
            raise UsageError("--text is empty")
        vectors: Embeddings = embedder.embed_texts([text])
        return SavedQuery(name, "text", text, embedder.name, vectors[0].tolist())
    assert image is not None
    path = image
    if urlsplit(image).scheme in ("http", "https", "file"):
        if fetcher is None:
            raise UsageError("image URLs need a fetcher")
        try:
            path = str(fetcher.fetch(image))
        except FetchError as exc:
            raise InputDataError(f"cannot fetch {image}: {exc}") from exc
    elif not Path(image).is_file():
        raise InputDataError(f"{image}: no such file")
    try:
        pixels = embedder.preprocess(decode(path, embedder.preprocess))
    except DECODE_ERRORS as exc:
        raise InputDataError(f"{image}: not a readable image ({exc})") from exc
    vectors = embedder.embed_pixels(pixels[None])
    return SavedQuery(name, "image", image, embedder.name, vectors[0].tolist())
