"""Saved searches: a text or an outside image, embedded by the photos' model,
stored in raw.search_queries for the search_results mart to answer.

A search embedded by another model than the photos' would find nonsense, so
saving one is refused while the store's photos name another model (the dbt
test saved_searches_match_photos_model catches photos loaded afterwards)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from bildsuche.errors import EmbeddingModelMismatchError, InputDataError, UsageError
from python_embed.decode import DECODE_ERRORS, decode
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import Fetcher, FetchError
from python_embed.types import Embeddings
from seeds_loader.embed_model import EMBED_MODEL_COLUMN, UNKNOWN_MODEL
from seeds_loader.loader import ensure_table, qualified
from seeds_loader.schema import PHOTOS, RAW_DATABASE, SEARCH_QUERIES

MAX_NAME = 200


@dataclass(frozen=True)
class SavedQuery:
    name: str
    kind: str  # "text" or "image"
    query: str
    model: str
    embedding: list[float]


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


def photo_models(client: Client) -> list[str]:
    """The models that embedded the store's photos (none when no photos are loaded).

    Photos loaded before the model was recorded have no embed_model column and
    count as 'unknown', as stg_photos reads them.
    """
    photos = qualified(PHOTOS.name)
    if not client.command(f"EXISTS TABLE {photos}"):
        return []
    columns = client.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String}",
        parameters={"db": RAW_DATABASE, "table": PHOTOS.name},
    ).result_rows
    if (EMBED_MODEL_COLUMN,) not in columns:
        return [UNKNOWN_MODEL] if client.command(f"SELECT count() FROM {photos}") else []
    rows = client.query(f"SELECT DISTINCT {EMBED_MODEL_COLUMN} FROM {photos} ORDER BY 1 LIMIT 10").result_rows
    return [str(row[0]) for row in rows]


def check_model(client: Client, model: str) -> None:
    """Raise EmbeddingModelMismatchError unless the store's photos are all of ``model``."""
    models = photo_models(client)
    if not models or models == [model]:
        return
    if UNKNOWN_MODEL in models:
        raise EmbeddingModelMismatchError(
            "the photos in raw.photos do not record which model embedded them ('unknown'), so a search "
            f"embedded by {model} cannot be compared with them; load them again with "
            "`python -m seeds_loader DIR --embed-model NAME`"
        )
    raise EmbeddingModelMismatchError(
        f"the photos in raw.photos were embedded by {', '.join(models)}, not by {model}: "
        "embed the search with the photos' model (--model)"
    )


def save_queries(client: Client, queries: Sequence[SavedQuery]) -> None:
    """Store ``queries``, each under its name replacing an earlier query of that name, in
    one insert; refused, with nothing written, unless the photos' model embedded them."""
    if not queries:
        return
    for model in sorted({q.model for q in queries}):
        check_model(client, model)
    ensure_table(client, SEARCH_QUERIES, len(queries[0].embedding))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = pa.table(
        {
            "name": [q.name for q in queries],
            "kind": [q.kind for q in queries],
            "query": [q.query for q in queries],
            "model": [q.model for q in queries],
            "embedding": pa.array([q.embedding for q in queries], pa.list_(pa.float32())),
            "saved_at": pa.array([now] * len(queries), pa.timestamp("ms")),
        }
    )
    client.insert_arrow(f"{RAW_DATABASE}.{SEARCH_QUERIES.name}", rows)


def save_query(client: Client, query: SavedQuery) -> None:
    """Store ``query`` under its name, replacing an earlier query of that name."""
    save_queries(client, [query])
