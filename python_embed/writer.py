"""The parquet files of a data set (bildsuche.dataset), written as one set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bildsuche import files
from bildsuche.dataset import MODEL_METADATA_KEY
from python_embed.types import Failure


def parquet(table: pa.Table) -> files.Writer:
    return lambda path: pq.write_table(table, path, compression="zstd")


def write_all(tables: Mapping[Path, pa.Table]) -> None:
    """Every table as a parquet file, all replaced together or none (bildsuche.files);
    raises OutputError."""
    files.write_files({path: parquet(table) for path, table in tables.items()})


def stale_parts(folder: Path) -> list[Path]:
    """Parquet files write_all leaves when its process is killed mid-write."""
    return files.stale_parts(folder, "*.parquet")


def with_model(table: pa.Table, model: str) -> pa.Table:
    """Record the embedding model in the file's schema metadata."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), MODEL_METADATA_KEY: model.encode()})


def failures_table(failures: Sequence[Failure]) -> pa.Table:
    return pa.table(
        {
            "photo_id": pa.array([f.photo_id for f in failures], type=pa.string()),
            "url": pa.array([f.url for f in failures], type=pa.string()),
            "stage": pa.array([f.stage for f in failures], type=pa.string()),
            "reason": pa.array([f.reason for f in failures], type=pa.string()),
        }
    )
