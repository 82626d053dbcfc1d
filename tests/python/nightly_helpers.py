"""Data sets that change night by night (photos added, removed, re-embedded), and what to compare.

Every photo keeps its id and URL from night to night, as python_embed's
outputs do, so a night differs from the one before by exactly its changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bildsuche.dataset import MODEL_METADATA_KEY
from bildsuche.store import client_for
from datasets_helpers import KEYWORDS, SYNTHETIC_MODEL, SyntheticDataset, clustered_embeddings, conversions_table


def write_night(
    directory: Path, photo_ids: list[str], embeddings: np.ndarray, conversions: list[tuple[str, str]],
    model: str = SYNTHETIC_MODEL,
) -> SyntheticDataset:  # fmt: skip
    n, dim = embeddings.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    photos = pa.table(
        {
            "id": pa.array([int(pid.lstrip("-pn").replace("x", "9")) for pid in photo_ids], pa.int64()),
            "photo_id": pa.array(photo_ids, pa.string()),
            "photo_image_url": pa.array([f"https://images.example/{pid}" for pid in photo_ids], pa.string()),
            "photo_embed": pa.ListArray.from_arrays(offsets, pa.array(embeddings.reshape(-1), pa.float32())),
        }
    ).replace_schema_metadata({MODEL_METADATA_KEY: model.encode()})
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(photos, directory / "photos.parquet")
    pq.write_table(conversions_table(conversions), directory / "conversions.parquet")
    return SyntheticDataset(directory, list(photo_ids), embeddings.astype(np.float32), list(conversions))


def _conversions(rng: np.random.Generator, photo_ids: list[str]) -> list[tuple[str, str]]:
    rows = []
    for pid in photo_ids:
        for k in rng.choice(len(KEYWORDS), size=int(rng.geometric(0.15)), replace=True):
            rows.append((pid, KEYWORDS[k]))
    return rows


def first_night(directory: Path, n: int = 240, dim: int = 512, seed: int = 21) -> SyntheticDataset:
    rng = np.random.default_rng(seed)
    ids = [f"-p{i:04d}" if i % 17 == 0 else f"p{i:04d}" for i in range(n)]
    return write_night(directory, ids, clustered_embeddings(n, dim, rng), _conversions(rng, ids))


def next_night(
    before: SyntheticDataset, directory: Path, *, remove: list[str], change: list[str], add: int, seed: int,
    near: dict[str, str] | None = None,
) -> SyntheticDataset:  # fmt: skip
    """``before`` without ``remove``, with new vectors for ``change`` (``near``: photo -> a photo to
    nearly copy), and ``add`` new photos; conversions of removed photos go with them."""
    rng = np.random.default_rng(seed)
    keep = [i for i, pid in enumerate(before.photo_ids) if pid not in remove]
    ids = [before.photo_ids[i] for i in keep]
    x = before.embeddings[keep].copy()
    dim = x.shape[1]
    for pid in change:
        row = ids.index(pid)
        if near and pid in near:
            v = x[ids.index(near[pid])] + 0.01 * rng.standard_normal(dim).astype(np.float32)
        else:
            v = rng.standard_normal(dim).astype(np.float32)
        x[row] = v / np.linalg.norm(v)
    start = 1 + max(int(pid.lstrip("-pn")) for pid in before.photo_ids)
    new_ids = [f"n{start + i:04d}" for i in range(add)]
    new_x = clustered_embeddings(add, dim, rng) if add else np.zeros((0, dim), np.float32)
    conversions = [c for c in before.conversions if c[0] not in remove] + _conversions(rng, new_ids)
    return write_night(directory, ids + new_ids, np.concatenate([x, new_x]), conversions)


MART_QUERIES = {
    "photos": "SELECT id, photo_id, photo_image_url, photo_embed, embed_model, content_hash FROM analytics.photos",
    "top_k_neighbours": "SELECT * FROM analytics.top_k_neighbours",
    "conversions_per_candidate": "SELECT * FROM analytics.conversions_per_candidate",
    "keyword_breakdown": "SELECT * FROM analytics.keyword_breakdown",
    "photo_attributes": "SELECT * FROM analytics.photo_attributes",
    "photo_neighbours": "SELECT photo_id, neighbour_id, rank, dist, photo_embed_hash FROM analytics.photo_neighbours",
    "near_duplicates": "SELECT * FROM analytics.near_duplicates",
    "search_results": "SELECT * FROM analytics.search_results",
    "keyword_suggestions": "SELECT * FROM analytics.keyword_suggestions",
    "underexposed_lookalikes": "SELECT * FROM analytics.underexposed_lookalikes",
}


def marts(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every mart's rows, sorted, as comparable values."""
    out = {}
    with client_for("embedded", path=store) as client:
        for name, sql in MART_QUERIES.items():
            out[name] = sorted(_comparable(row) for row in client.query(sql).result_rows)
    return out


def _comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_value(value) for value in row)


def _value(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_value(v) for v in value)
    return round(value, 6) if isinstance(value, float) else value
