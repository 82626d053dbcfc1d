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
from python_embed.text_models import TextEncoder, check_fit
from python_embed.types import Embeddings

MAX_NAME = 200

__all__ = ["MAX_NAME", "SavedQuery", "embed_query", "embed_text"]


def _check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise UsageError(f"--name must be 1 to {MAX_NAME} printable characters")


def embed_text(encoder: TextEncoder, *, name: str, text: str, image_model: str) -> SavedQuery:
    """A text search embedded by ``encoder``: ``image_model``'s own text tower, or a text model
    trained into its space (else EmbeddingModelMismatchError, naming both)."""
    _check_name(name)
    if not text.strip():
        raise UsageError("--text is empty")
    if encoder.name != image_model:
        check_fit(encoder.name, image_model)
    vectors: Embeddings = encoder.embed_texts([text])
    return SavedQuery(name, "text", text, image_model, vectors[0].tolist(), text_model=encoder.name)


def embed_query(
    embedder: ClipEmbedder, *, name: str, text: str | None = None, image: str | None = None,
    fetcher: Fetcher | None = None,
) -> SavedQuery:  # fmt: skip
    """A text (the CLIP text tower) or an image (the image tower) embedded by ``embedder``."""
    _check_name(name)
    if (text is None) == (image is None):
        raise UsageError("give exactly one of --text and --image")
    if text is not None:
        return embed_text(embedder, name=name, text=text, image_model=embedder.name)
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
    vectors: Embeddings = embedder.embed_pixels(pixels[None])
    return SavedQuery(name, "image", image, embedder.name, vectors[0].tolist())
