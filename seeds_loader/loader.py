"""Stream parquet files into the raw tables, replacing their content atomically.

Every file is validated before the store is touched.  Rows then go, in Arrow
batches, into fresh `<table>__loading` tables; only when all of them hold
every row are they exchanged with the live tables.  A failure at any point
drops the loading tables and leaves the live ones as they were, and loading
the same files twice leaves one copy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from bildsuche.dataset import EMBED_MODEL_COLUMN, UNKNOWN_MODEL
from bildsuche.errors import InputDataError, StoreUnavailableError
from bildsuche.sqltext import identifier, string_literal
from seeds_loader.embed_model import FileModel, file_model
from seeds_loader.schema import CONVERSIONS, PHOTOS, RAW_DATABASE, SEARCH_QUERIES, TABLES, RawTable
from seeds_loader.validate import open_parquet, scan

# Rows per insert: photos carry 2 KiB of floats each, conversions a few dozen bytes.
BATCH_ROWS = {"photos": 4096}
DEFAULT_BATCH_ROWS = 262_144

Progress = Callable[[str, int, int], None]
"""Called as progress(table, rows_loaded, rows_total) after every batch."""


@dataclass
class LoadReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    columns_left_out: dict[str, list[str]] = field(default_factory=dict)
    # The model that embedded the loaded photos (raw.photos.embed_model), and their dimension.
    embed_model: str | None = None
    dim: int | None = None
    warnings: list[str] = field(default_factory=list)


def qualified(name: str) -> str:
    return f"{identifier(RAW_DATABASE)}.{identifier(name)}"


def _batches(table: RawTable, path: Path, types: dict[str, pa.DataType], model: FileModel | None) -> Iterator[pa.Table]:
    pf = open_parquet(path)
    target = pa.schema([pa.field(n, t) for n, t in types.items()])
    read = [name for name in types if name != table.model_column]
    for batch in pf.iter_batches(batch_size=BATCH_ROWS.get(table.name, DEFAULT_BATCH_ROWS), columns=read):
        arrays = []
        for name, arrow_type in types.items():
            if name == table.model_column:
                # One model per file (file_model refused any other), so one value per row.
                arrays.append(pa.repeat(pa.scalar(model.model if model else "", pa.string()), batch.num_rows))
                continue
            column = batch.column(name)
            required = name in table.columns
            if name in ("id", "photo_id") and required and column.null_count:
                raise InputDataError(f"{path}: {column.null_count} row(s) without {name}")
            if pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
                column = column.cast(pa.list_(column.type.value_type))
            column = column.cast(arrow_type)
            if required and pa.types.is_string(arrow_type) and column.null_count:
                column = pc.fill_null(column, "")
            arrays.append(column)
        yield pa.Table.from_arrays(arrays, schema=target)


def exists(client: Client, name: str) -> bool:
    return bool(client.command(f"EXISTS TABLE {qualified(name)}"))


def model_expression(client: Client) -> str:
    """raw.photos' model column; photos loaded before the model was recorded have none and count
    as 'unknown', as stg_photos reads them."""
    columns = client.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String}",
        parameters={"db": RAW_DATABASE, "table": PHOTOS.name},
    ).result_rows
    return identifier(EMBED_MODEL_COLUMN) if (EMBED_MODEL_COLUMN,) in columns else string_literal(UNKNOWN_MODEL)


def stored_photos(client: Client) -> tuple[str, int] | None:
    """(model, dimension) of the photos in raw.photos, or None when it holds none."""
    if not exists(client, PHOTOS.name):
        return None
    model = model_expression(client)
    rows = client.query(
        f"SELECT any({model}), any(length(photo_embed)), count() FROM {qualified(PHOTOS.name)}"
    ).result_rows
    if not rows or not rows[0][2]:
        return None
    return str(rows[0][0]), int(rows[0][1])


def _check_dimension(client: Client, path: Path, model: FileModel, dim: int) -> None:
    """A model has one dimension: a set of another length replaces the photos only as a new model."""
    stored = stored_photos(client)
    if stored is None or stored[1] == dim:
        return
    stored_model, stored_dim = stored
    if model.unknown or model.model == stored_model:
        raise InputDataError(
            f"{path}: its photos have {dim}-dimensional photo_embed vectors, the {stored_model} photos in "
            f"raw.photos {stored_dim}-dimensional ones; one model has one dimension: name the model that "
            "embedded the file (--embed-model) to replace the photos with another model's"
        )


def _insert(
    client: Client,
    table: RawTable,
    path: Path,
    total: int,
    dim: int,
    model: FileModel | None,
    progress: Progress | None,
) -> list[str]:
    """Fill `<table>__loading`; return the file's columns that could not be loaded."""
    staging = qualified(f"{table.name}__loading")
    consumed = [model.column] if model and model.column else []
    arrow_types, clickhouse_types, left_out = table.layout(open_parquet(path).schema_arrow, consumed)
    client.command(f"DROP TABLE IF EXISTS {staging}")
    client.command(table.ddl(staging, dim, clickhouse_types))
    done = 0
    if progress:
        progress(table.name, 0, total)
    for chunk in _batches(table, path, arrow_types, model):
        client.insert_arrow(f"{RAW_DATABASE}.{table.name}__loading", chunk)
        done += chunk.num_rows
        if progress:
            progress(table.name, done, total)
    stored = int(client.query(f"SELECT count() FROM {staging}").result_rows[0][0])
    if stored != total:
        raise InputDataError(f"{path}: {total} rows read but {stored} stored in {staging}")
    return left_out


def _swap_in(client: Client, name: str) -> None:
    staging, live = qualified(f"{name}__loading"), qualified(name)
    if exists(client, name):
        client.command(f"EXCHANGE TABLES {staging} AND {live}")
        client.command(f"DROP TABLE {staging}")
    else:
        client.command(f"RENAME TABLE {staging} TO {live}")


def ensure_table(client: Client, table: RawTable, dim: int) -> None:
    """Create raw.<table> (and the raw database) when missing; never touch an existing one."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {identifier(RAW_DATABASE)}")
    if not exists(client, table.name):
        client.command(table.ddl(qualified(table.name), dim))


def _drop_staging(client: Client) -> None:
    for table in TABLES:
        with contextlib.suppress(ClickHouseError):
            client.command(f"DROP TABLE IF EXISTS {qualified(table.name + '__loading')}")


def load(
    client: Client,
    directory: Path,
    *,
    dim: int | None = None,
    embed_model: str | None = None,
    progress: Progress | None = None,
) -> LoadReport:
    """Load ``directory``/photos.parquet and, when present, conversions.parquet,
    keywords.parquet, collections.parquet and colors.parquet.

    The dimension of the vectors is the file's (every vector as long as the
    first; ``dim``, when given, is checked too), and raw.photos' CHECK
    constraint holds it.  Every photo is stored with the model that embedded it
    (raw.photos.embed_model): the one the file records, else ``embed_model``,
    else 'unknown' with a warning in the report.  A missing file leaves its
    table as it is (raw.conversions is created empty when absent, as the marts
    read it).  Raises InputDataError for bad files, with the store unchanged.
    """
    if dim is not None and dim < 1:
        raise InputDataError(f"--dim must be positive, got {dim}")
    directory = Path(directory)
    if not directory.is_dir():
        raise InputDataError(f"{directory}: not a directory")
    report = LoadReport()
    present = [t for t in TABLES if (directory / t.file_name).is_file()]
    if PHOTOS not in present:
        raise InputDataError(f"{directory}: no {PHOTOS.file_name} to load")
    scans = {t.name: scan(t, directory / t.file_name, dim) for t in present}
    totals = {name: rows for name, (rows, _) in scans.items()}
    found_dim = scans[PHOTOS.name][1]
    photos_path = directory / PHOTOS.file_name
    if totals[PHOTOS.name] == 0 or found_dim is None:
        raise InputDataError(f"{photos_path}: no photos; loading it would empty raw.photos")
    model = file_model(photos_path, open_parquet(photos_path), embed_model)
    report.embed_model, report.dim = model.model, found_dim
    if model.unknown:
        report.warnings.append(
            f"{photos_path} does not say which model embedded its photos: raw.photos.embed_model is "
            f"'{model.model}', and saved searches are refused until it is known; load again with "
            "--embed-model NAME (for example openai/clip-vit-base-patch32)"
        )
    try:
        _check_dimension(client, photos_path, model, found_dim)
        client.command(f"CREATE DATABASE IF NOT EXISTS {identifier(RAW_DATABASE)}")
        _drop_staging(client)  # left by a load that was killed: they would outlive this one
        for table in present:
            started = time.perf_counter()
            table_model = model if table is PHOTOS else None
            left_out = _insert(
                client, table, directory / table.file_name, totals[table.name], found_dim, table_model, progress
            )
            if left_out:
                report.columns_left_out[table.name] = left_out
            report.seconds[table.name] = time.perf_counter() - started
        for table in present:
            _swap_in(client, table.name)
            report.rows[table.name] = totals[table.name]
        report.skipped = [table.name for table in TABLES if table not in present]
        # The marts read conversions and saved searches (python_embed query fills those).
        ensure_table(client, CONVERSIONS, found_dim)
        ensure_table(client, SEARCH_QUERIES, found_dim)
    except ClickHouseError as exc:
        _drop_staging(client)
        raise StoreUnavailableError(f"loading failed, raw tables unchanged: {exc}") from exc
    except OSError as exc:  # the embedded engine's client writes inserts through files: a full disk
        _drop_staging(client)
        raise StoreUnavailableError(f"loading failed, raw tables unchanged: {exc.strerror or exc}") from exc
    except BaseException:
        _drop_staging(client)
        raise
    return report
