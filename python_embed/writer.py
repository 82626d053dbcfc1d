"""The parquet files seeds_loader reads, written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bildsuche.errors import OutputError
from python_embed.types import Conversion, Embeddings, Failure, PhotoSource
from seeds_loader.embed_model import MODEL_METADATA_KEY

PHOTOS_FILE = "photos.parquet"
CONVERSIONS_FILE = "conversions.parquet"
FAILURES_FILE = "failures.parquet"


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write beside ``path`` and rename over it: readers see the old file or the new one."""
    write_all({path: table})


def write_all(tables: Mapping[Path, pa.Table]) -> None:
    """Write every table beside its path, then rename them all into place.

    Writing is what fails on a full disk or a read-only folder, so a failure
    replaces none of the files: the earlier set stays whole, and no partial
    file is left behind.  Raises OutputError.
    """
    staged: list[tuple[Path, Path]] = []
    target = next(iter(tables), Path("."))
    try:
        for target, table in tables.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            staged.append((Path(name), target))
            pq.write_table(table, name, compression="zstd")
        for part, target in staged:
            os.replace(part, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        for part, _ in staged:
            part.unlink(missing_ok=True)


def stale_parts(folder: Path) -> list[Path]:
    """Files write_all leaves when its process is killed mid-write."""
    return sorted(folder.glob(".*.parquet.*.tmp"))


def with_model(table: pa.Table, model: str) -> pa.Table:
    """Record the embedding model in the file's schema metadata."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), MODEL_METADATA_KEY: model.encode()})


def photos_table(photos: Sequence[PhotoSource], embeddings: Embeddings, model: str) -> pa.Table:
    if len(photos) != len(embeddings):
        raise ValueError(f"{len(photos)} photos but {len(embeddings)} embeddings")
    dim = embeddings.shape[1] if embeddings.ndim == 2 else 0
    flat = pa.array(embeddings.reshape(-1), type=pa.float32())
    offsets = pa.array(range(0, (len(photos) + 1) * dim, dim) if dim else [0] * (len(photos) + 1), type=pa.int32())
    table = pa.table(
        {
            "id": pa.array(range(len(photos)), type=pa.int64()),
            "photo_id": pa.array([p.photo_id for p in photos], type=pa.string()),
            "photo_image_url": pa.array([p.photo_image_url for p in photos], type=pa.string()),
            "photo_embed": pa.ListArray.from_arrays(offsets, flat),
        }
    )
    return with_model(table, model)


def conversions_table(conversions: Sequence[Conversion]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(len(conversions)), type=pa.int64()),
            "photo_id": pa.array([c.photo_id for c in conversions], type=pa.string()),
            "keyword": pa.array([c.keyword for c in conversions], type=pa.string()),
        }
    )


def failures_table(failures: Sequence[Failure]) -> pa.Table:
    return pa.table(
        {
            "photo_id": pa.array([f.photo_id for f in failures], type=pa.string()),
            "url": pa.array([f.url for f in failures], type=pa.string()),
            "stage": pa.array([f.stage for f in failures], type=pa.string()),
            "reason": pa.array([f.reason for f in failures], type=pa.string()),
        }
    )


def write_dataset(
    out: Path,
    photos: Sequence[PhotoSource],
    embeddings: Embeddings,
    model: str,
    conversions: Sequence[Conversion] = (),
    failures: Sequence[Failure] = (),
) -> None:
    """photos.parquet, conversions.parquet (only rows of embedded photos, as the
    tutorial keeps them) and failures.parquet under ``out``."""
    embedded = {p.photo_id for p in photos}
    kept = [c for c in conversions if c.photo_id in embedded]
    write_atomic(photos_table(photos, embeddings, model), out / PHOTOS_FILE)
    write_atomic(conversions_table(kept), out / CONVERSIONS_FILE)
    write_atomic(failures_table(failures), out / FAILURES_FILE)
