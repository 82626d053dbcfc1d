"""Which model embedded the photos of a file, stored with every row as raw.photos.embed_model.

A row's model comes from the file's `embed_model` (or `model`) column, else
from the model python_embed records in the file's schema metadata, else from
the model the user declares (``--embed-model``), else it is 'unknown'.
Embeddings of different models cannot be compared, so a file whose rows name
more than one model is refused, and so is a declared model that contradicts
the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bildsuche.dataset import EMBED_MODEL_COLUMN, UNKNOWN_MODEL, recorded_model
from bildsuche.errors import InputDataError

SCAN_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class FileModel:
    """The embedding model of a photos file."""

    model: str
    # The parquet column naming it per row, if any; consumed, not loaded as a column of its own.
    column: str | None = None

    @property
    def unknown(self) -> bool:
        return self.model == UNKNOWN_MODEL


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_null(arrow_type)


def row_column(schema: pa.Schema) -> str | None:
    """The parquet column naming each row's model, or None: `embed_model`, else `model`
    when it holds text (a `model` column of another type is photo metadata)."""
    if EMBED_MODEL_COLUMN in schema.names:
        return EMBED_MODEL_COLUMN
    if "model" in schema.names and _is_text(schema.field("model").type):
        return "model"
    return None


def _row_models(path: Path, pf: pq.ParquetFile, column: str) -> Counter[str | None]:
    """Rows per model named in ``column`` (None: rows that name none, or 'unknown')."""
    counts: Counter[str | None] = Counter()
    try:
        for batch in pf.iter_batches(batch_size=SCAN_BATCH_ROWS, columns=[column]):
            values = pc.utf8_trim_whitespace(batch.column(0).cast(pa.string()))
            blank = pc.or_(pc.equal(values, ""), pc.equal(values, UNKNOWN_MODEL))
            values = pc.if_else(blank, pa.scalar(None, pa.string()), values)
            for entry in pc.value_counts(values).to_pylist():
                counts[entry["values"]] += entry["counts"]
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"{path}: unreadable {column} column ({exc})") from exc
    return counts


def file_model(path: Path, pf: pq.ParquetFile, declared: str | None = None) -> FileModel:
    """The one model that embedded every photo of ``path``; raises InputDataError when rows
    name several models or ``declared`` contradicts what the file records."""
    declared = declared.strip() if declared else None
    if declared == UNKNOWN_MODEL:
        declared = None
    schema = pf.schema_arrow
    if EMBED_MODEL_COLUMN in schema.names and not _is_text(schema.field(EMBED_MODEL_COLUMN).type):
        raise InputDataError(
            f"{path}: column {EMBED_MODEL_COLUMN} has type {schema.field(EMBED_MODEL_COLUMN).type}, expected text"
        )
    column = row_column(schema)
    # Rows that name no model take the file's recorded model, else the declared one.
    fallback = recorded_model(schema.metadata) or declared or UNKNOWN_MODEL
    models: Counter[str] = Counter()
    if column is not None:
        for model, rows in _row_models(path, pf, column).items():
            models[model or fallback] += rows
    else:
        models[fallback] = pf.metadata.num_rows
    if len(models) > 1:
        listed = ", ".join(f"{m} ({n:,} photos)" for m, n in models.most_common())
        raise InputDataError(
            f"{path}: photos embedded by {len(models)} models (column {column}): {listed}; embeddings of "
            "different models cannot be compared, so one store holds the photos of one model"
        )
    model = next(iter(models), fallback)
    if declared and model != declared:
        raise InputDataError(f"{path}: the file records embedding model {model!r}, not {declared!r} (--embed-model)")
    return FileModel(model, column)
