"""The data set's contract: what python_embed writes and seeds_loader reads.

A data set is a folder of parquet files (photos, conversions, failures, and
Unsplash Lite's other tables when present); photos.parquet names the model
that embedded it in its schema metadata.  Saved searches are records of the
same kind, embedded by python_embed and stored by seeds_loader.
"""

from __future__ import annotations

from dataclasses import dataclass

PHOTOS_FILE = "photos.parquet"
CONVERSIONS_FILE = "conversions.parquet"
FAILURES_FILE = "failures.parquet"
# Unsplash Lite's other tables, written and loaded when the source has them.
EXTRA_TABLES = ("keywords", "collections", "colors")

MODEL_METADATA_KEY = b"bildsuche.model"
EMBED_MODEL_COLUMN = "embed_model"
UNKNOWN_MODEL = "unknown"
# The download cache inside a data set folder.
CACHE_DIR = ".bildsuche-cache"


@dataclass(frozen=True)
class SavedQuery:
    """A text or an outside image, embedded to search the photos with."""

    name: str
    kind: str  # "text" or "image"
    query: str
    model: str  # the image model whose space ``embedding`` is in: the photos' model
    embedding: list[float]
    # The encoder of a text search: ``model`` itself (its CLIP text tower) or a text model
    # trained into its space (a multilingual one); "" for an image search.
    text_model: str = ""


@dataclass(frozen=True)
class KeywordEmbedding:
    """A search keyword embedded by a CLIP model's text tower."""

    model: str
    keyword: str
    embedding: list[float]


def recorded_model(metadata: dict[bytes, bytes] | None) -> str | None:
    """The model python_embed wrote into a file's schema metadata ('unknown' counts as none)."""
    value = (metadata or {}).get(MODEL_METADATA_KEY, b"").decode("utf-8", "replace").strip()
    return value if value and value != UNKNOWN_MODEL else None
