"""Saved searches in raw.search_queries, for the search_results mart to answer.

A search embedded by another model than the photos' would find nonsense, so
saving one is refused while the store's photos name another model (the dbt
test saved_searches_match_photos_model catches photos loaded afterwards).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from bildsuche.dataset import UNKNOWN_MODEL, SavedQuery
from bildsuche.errors import EmbeddingModelMismatchError
from seeds_loader.loader import ensure_table, exists, model_expression, qualified
from seeds_loader.schema import PHOTOS, RAW_DATABASE, SEARCH_QUERIES, on_cluster


def photo_models(client: Client) -> list[str]:
    """The models that embedded the store's photos (none when no photos are loaded)."""
    if not exists(client, PHOTOS.name):
        return []
    model = model_expression(client)
    rows = client.query(f"SELECT DISTINCT {model} FROM {qualified(PHOTOS.name)} ORDER BY 1 LIMIT 10").result_rows
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


def save_queries(client: Client, queries: Sequence[SavedQuery], cluster: str = "") -> None:
    """Store ``queries``, each under its name replacing an earlier query of that name, in
    one insert; refused, with nothing written, unless the photos' model embedded them.
    ``cluster``: the table is created replicated to every node of that cluster."""
    if not queries:
        return
    for model in sorted({q.model for q in queries}):
        check_model(client, model)
    ensure_table(client, SEARCH_QUERIES, len(queries[0].embedding), cluster)
    # Tables made before saved searches recorded their text model gain the column ('' in old rows).
    client.command(
        f"ALTER TABLE {qualified(SEARCH_QUERIES.name)}{on_cluster(cluster)} ADD COLUMN IF NOT EXISTS text_model String"
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = pa.table(
        {
            "name": [q.name for q in queries],
            "kind": [q.kind for q in queries],
            "query": [q.query for q in queries],
            "model": [q.model for q in queries],
            "embedding": pa.array([q.embedding for q in queries], pa.list_(pa.float32())),
            "saved_at": pa.array([now] * len(queries), pa.timestamp("ms")),
            "text_model": [q.text_model for q in queries],
        }
    )
    client.insert_arrow(f"{RAW_DATABASE}.{SEARCH_QUERIES.name}", rows)


def save_query(client: Client, query: SavedQuery, cluster: str = "") -> None:
    """Store ``query`` under its name, replacing an earlier query of that name."""
    save_queries(client, [query], cluster)
