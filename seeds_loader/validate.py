"""Check a parquet file against its raw table before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bildsuche.errors import InputDataError
from seeds_loader.schema import PHOTOS, RawTable

SCAN_BATCH_ROWS = 8192
STREAM_BUFFER = 1 << 20


def open_parquet(path: Path) -> pq.ParquetFile:
    """``path`` read as a stream: a batch costs what it holds. (By default pyarrow reads a whole
    row group's columns before the first batch, and python_embed's files hold a million photos in
    one: the first vector of such a file took 6.3 s, streamed 0.013 s, and a batch held 2 GB.)"""
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=STREAM_BUFFER)
    except FileNotFoundError as exc:
        raise InputDataError(f"{path}: no such file") from exc
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"{path}: not a readable parquet file ({exc})") from exc


def _accepts(required: pa.DataType, actual: pa.DataType) -> bool:
    if pa.types.is_list(required):
        return (
            pa.types.is_list(actual) or pa.types.is_large_list(actual) or pa.types.is_fixed_size_list(actual)
        ) and pa.types.is_floating(actual.value_type)
    if pa.types.is_integer(required):
        return pa.types.is_integer(actual)
    if pa.types.is_string(required):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual) or pa.types.is_null(actual)
    return actual == required


def check_schema(table: RawTable, path: Path, schema: pa.Schema) -> None:
    missing = [name for name in table.columns if name not in schema.names]
    if missing:
        raise InputDataError(
            f"{path}: missing column(s) {', '.join(missing)}; {table.file_name} needs "
            f"{', '.join(table.columns)} (found {', '.join(schema.names) or 'none'})"
        )
    for name, required in table.columns.items():
        actual = schema.field(name).type
        if not _accepts(required, actual):
            raise InputDataError(f"{path}: column {name} has type {actual}, expected {required}")


def _first_photo(batch: pa.RecordBatch, mask: pa.Array) -> str:
    ids = batch.column("photo_id").filter(mask)
    return repr(ids[0].as_py()) if len(ids) else "?"


def check_photos_batch(path: Path, batch: pa.RecordBatch, dim: int, seen: set[str]) -> None:
    photo_ids = batch.column("photo_id")
    embeds = batch.column("photo_embed")
    if photo_ids.null_count:
        raise InputDataError(f"{path}: {photo_ids.null_count} photo(s) without photo_id")
    if embeds.null_count:
        raise InputDataError(f"{path}: photo {_first_photo(batch, pc.is_null(embeds))} has no photo_embed")
    lengths = pc.list_value_length(embeds)
    wrong = pc.not_equal(lengths, dim)
    if pc.any(wrong).as_py():
        bad_len = lengths.filter(wrong)[0].as_py()
        raise InputDataError(
            f"{path}: photo {_first_photo(batch, wrong)} has a {bad_len}-dimensional photo_embed, "
            f"expected {dim} like the file's first photo (one model embeds every photo)"
        )
    values = pc.list_flatten(embeds)
    bad_values = pc.fill_null(pc.invert(pc.is_finite(values)), True)
    if pc.any(bad_values).as_py():
        row = pc.list_parent_indices(embeds).filter(bad_values)[0].as_py()
        raise InputDataError(
            f"{path}: photo {photo_ids[row].as_py()!r} has NaN, infinite or null values in photo_embed"
        )
    for pid in photo_ids.to_pylist():
        if pid in seen:
            raise InputDataError(f"{path}: photo_id {pid!r} appears more than once")
        seen.add(pid)


def first_dimension(path: Path, pf: pq.ParquetFile) -> int | None:
    """The length of the first photo's vector (None: no photos): the dimension of the set."""
    try:
        for batch in pf.iter_batches(batch_size=1, columns=["photo_id", "photo_embed"]):
            if batch.num_rows:
                vector = batch.column("photo_embed")[0]
                first = _first_photo(batch, pa.array([True]))
                if not vector.is_valid:
                    raise InputDataError(f"{path}: photo {first} has no photo_embed")
                if len(vector.values) < 1:
                    raise InputDataError(f"{path}: photo {first} has a 0-dimensional photo_embed")
                return len(vector.values)
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"{path}: unreadable data ({exc})") from exc
    return None


def header(table: RawTable, path: Path, dim: int | None = None) -> tuple[int, int | None]:
    """What ``scan`` returns, from the file's schema, row count and first photo alone: the loader
    checks every batch of photos as it reads them (``check_photos_batch``), in one pass."""
    pf = open_parquet(path)
    check_schema(table, path, pf.schema_arrow)
    if table is not PHOTOS:
        return pf.metadata.num_rows, None
    found = first_dimension(path, pf)
    if dim is not None and found is not None and found != dim:
        raise InputDataError(f"{path}: the photos have {found}-dimensional photo_embed vectors, expected {dim} (--dim)")
    return pf.metadata.num_rows, found


def scan(table: RawTable, path: Path, dim: int | None = None) -> tuple[int, int | None]:
    """Validate ``path`` for ``table`` without storing anything; return its row count and,
    for photos, the dimension of its vectors (every vector must have ``dim`` values, else
    as many as the first)."""
    rows, found = header(table, path, dim)
    if table is not PHOTOS:
        return rows, None
    seen: set[str] = set()
    rows = 0
    try:
        for batch in open_parquet(path).iter_batches(batch_size=SCAN_BATCH_ROWS, columns=["photo_id", "photo_embed"]):
            check_photos_batch(path, batch, found or 0, seen)
            rows += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"{path}: unreadable data ({exc})") from exc
    return rows, found
