"""The battery's store, and what no hostile input may change in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets_helpers import SyntheticDataset


@dataclass
class PayloadStore:
    """Synthetic photos whose ids include every injection payload, loaded, marts built."""

    data: SyntheticDataset
    store: Path
    root: Path


# One row; each column summarises a table by its row count and an order-free hash of its rows.
FINGERPRINT_SQL = """
SELECT
    (SELECT (count(), sum(cityHash64(id, photo_id, photo_image_url, photo_embed))) FROM raw.photos) AS photos,
    (SELECT (count(), sum(cityHash64(id, photo_id, keyword))) FROM raw.conversions) AS conversions,
    (SELECT (count(), sum(cityHash64(name, query, embedding))) FROM raw.search_queries) AS searches,
    (SELECT (count(), sum(cityHash64(target_photo_id, photo_id, rank))) FROM analytics.top_k_neighbours) AS top_k,
    (SELECT (count(), sum(cityHash64(photo_id, downloads))) FROM analytics.conversions_per_candidate) AS downloads,
    (SELECT arraySort(groupArray(database || '.' || name)) FROM system.tables
        WHERE database IN ('raw', 'analytics')) AS tables
"""

# The same for a store that holds raw tables only (no dbt run yet).
RAW_FINGERPRINT_SQL = """
SELECT
    (SELECT (count(), sum(cityHash64(id, photo_id, photo_image_url, photo_embed))) FROM raw.photos) AS photos,
    (SELECT (count(), sum(cityHash64(id, photo_id, keyword))) FROM raw.conversions) AS conversions,
    (SELECT arraySort(groupArray(table || '.' || name || ':' || type)) FROM system.columns
        WHERE database = 'raw' AND NOT endsWith(table, '__loading')) AS columns,
    (SELECT arraySort(groupArray(name)) FROM system.tables
        WHERE database = 'raw' AND NOT endsWith(name, '__loading')) AS tables
"""
