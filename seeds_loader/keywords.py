"""Search keywords for the keyword_search_relevance mart: which ones to embed, and their
embeddings in raw.keyword_embeddings, kept per model so each keyword is embedded once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from bildsuche.dataset import KeywordEmbedding
from seeds_loader.loader import ensure_table, exists, qualified
from seeds_loader.schema import CONVERSIONS, KEYWORD_EMBEDDINGS, RAW_DATABASE

# The keyword as stg_conversions normalises it: the cache must hold the mart's spelling.
NORMALISED_KEYWORD = "lower(trim(keyword))"


@dataclass(frozen=True)
class KeywordsToEmbed:
    """The frequent keywords of the store: those still to embed for a model, and those cached."""

    missing: list[str]
    cached: int


def frequent_keywords(client: Client, model: str, *, min_searches: int, limit: int) -> KeywordsToEmbed:
    """The ``limit`` keywords with the most downloads (at least ``min_searches``), split into
    those ``model`` has not embedded yet and the number it has."""
    if not exists(client, CONVERSIONS.name):
        return KeywordsToEmbed([], 0)
    rows = client.query(
        f"SELECT {NORMALISED_KEYWORD} AS kw, count() AS n FROM {qualified(CONVERSIONS.name)} "
        "WHERE kw != '' GROUP BY kw HAVING n >= {min:UInt64} ORDER BY n DESC, kw LIMIT {limit:UInt64}",
        parameters={"min": min_searches, "limit": limit},
    ).result_rows
    keywords = [str(row[0]) for row in rows]
    cached: set[str] = set()
    if keywords and exists(client, KEYWORD_EMBEDDINGS.name):
        cached = {
            str(row[0])
            for row in client.query(
                f"SELECT DISTINCT keyword FROM {qualified(KEYWORD_EMBEDDINGS.name)} "
                "WHERE model = {model:String} AND keyword IN {keywords:Array(String)}",
                parameters={"model": model, "keywords": keywords},
            ).result_rows
        }
    return KeywordsToEmbed([kw for kw in keywords if kw not in cached], len(cached))


def save_keyword_embeddings(client: Client, embeddings: Sequence[KeywordEmbedding], cluster: str = "") -> None:
    """Store ``embeddings`` in one insert, each replacing an earlier one of its model and keyword
    (``cluster``: the table is created replicated to every node of that cluster)."""
    if not embeddings:
        return
    ensure_table(client, KEYWORD_EMBEDDINGS, len(embeddings[0].embedding), cluster)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = pa.table(
        {
            "model": [e.model for e in embeddings],
            "keyword": [e.keyword for e in embeddings],
            "embedding": pa.array([e.embedding for e in embeddings], pa.list_(pa.float32())),
            "embedded_at": pa.array([now] * len(embeddings), pa.timestamp("ms")),
        }
    )
    client.insert_arrow(f"{RAW_DATABASE}.{KEYWORD_EMBEDDINGS.name}", rows)
