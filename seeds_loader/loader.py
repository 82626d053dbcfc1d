"""Stream parquet files into the raw tables, replacing their content atomically.

Every file is validated before the store is touched.  A table whose file is
byte for byte the one it was loaded from is left as it is.  Rows then go, in
Arrow batches, into fresh `<table>__loading` tables: for raw.photos only the
rows that changed, beside the unchanged parts of the live table (attached,
not copied), for the other tables every row.  Only when all of them hold
every row are they swapped in, together (seeds_loader/commit.py).  A failure
before that point drops the loading tables and leaves the live ones as they
were; loading the same files twice leaves one copy.

On a ClickHouse cluster (``cluster``: its name) the raw tables are sharded
(seeds_loader/schema.py), rows go in through the Distributed staging tables,
and a changed set is loaded whole: taking the live table's parts as they are
would be one ATTACH per shard replica, left for later.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from numpy.typing import NDArray

from bildsuche.dataset import EMBED_MODEL_COLUMN, UNKNOWN_MODEL
from bildsuche.errors import EmbeddingModelMismatchError, InputDataError, StoreUnavailableError
from bildsuche.sqltext import identifier, string_literal
from bildsuche.store import check_cluster
from seeds_loader import commit
from seeds_loader.commit import STAGING_SUFFIX, TableStamp, data_name, exists
from seeds_loader.embed_model import FileModel, file_model
from seeds_loader.rowhash import file_digest, row_hashes
from seeds_loader.schema import (
    CONVERSIONS,
    PHOTOS,
    RAW_DATABASE,
    SEARCH_QUERIES,
    TABLES,
    RawTable,
    on_cluster,
    qualified,
)
from seeds_loader.validate import check_photos_batch, first_dimension, header, open_parquet

# Rows per insert: photos carry 2 KiB of floats each, conversions a few dozen bytes.
BATCH_ROWS = {"photos": 4096}
DEFAULT_BATCH_ROWS = 262_144
# raw.photos keeps deleted rows masked until the engine merges its parts; beyond
# this share of changed rows a changed set is loaded whole instead.
MAX_CHANGED_SHARE = 0.5
# The (photo_id, row_hash) pairs to mask in the staging table; a `__loading` table like it.
GONE_SUFFIX = "__gone" + STAGING_SUFFIX

Progress = Callable[[str, int, int], None]
"""Called as progress(table, rows_read, rows_total) after every batch."""


@dataclass
class Changes:
    """How a changed photos file differed from raw.photos."""

    added: int = 0
    changed: int = 0
    removed: int = 0


@dataclass
class LoadReport:
    # Rows of every table swapped in (loaded whole or changed), and the seconds it took.
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # Tables loaded as their changes only, with what changed.
    changes: dict[str, Changes] = field(default_factory=dict)
    # Tables whose file is the one they were loaded from: left as they were.
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    columns_left_out: dict[str, list[str]] = field(default_factory=dict)
    # The model that embedded the loaded photos (raw.photos.embed_model), and their dimension.
    embed_model: str | None = None
    dim: int | None = None
    warnings: list[str] = field(default_factory=list)
    # A load killed after it committed, finished before this one.
    finished_earlier_load: bool = False


def _read(path: Path, table: RawTable, columns: list[str]) -> Iterator[pa.RecordBatch]:
    try:
        yield from open_parquet(path).iter_batches(
            batch_size=BATCH_ROWS.get(table.name, DEFAULT_BATCH_ROWS), columns=columns
        )
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"{path}: unreadable data ({exc})") from exc


def _batches(
    table: RawTable, path: Path, types: dict[str, pa.DataType], model: FileModel | None, dim: int
) -> Iterator[pa.Table]:
    """The file's rows as the raw table takes them, in batches; photos are validated batch by
    batch on the way (one read of the file: at a million photos a second one cost as much again)."""
    target = pa.schema([pa.field(n, t) for n, t in types.items()])
    computed = {table.model_column, table.hash_column}
    read = [name for name in types if name not in computed]
    seen: set[str] = set()
    for batch in _read(path, table, read):
        if table is PHOTOS:
            check_photos_batch(path, batch, dim, seen)
        arrays = []
        for name, arrow_type in types.items():
            if name == table.hash_column:
                continue
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
        names = [name for name in types if name != table.hash_column]
        chunk = pa.Table.from_arrays(arrays, names=names)
        if table.hash_column:
            chunk = chunk.append_column(table.hash_column, pa.array(row_hashes(chunk, table.vector_column)))
        yield chunk.select(list(types)).cast(target)


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


def _check_embeddings(client: Client, path: Path, model: FileModel, dim: int) -> None:
    """One store holds one model's embeddings, of one dimension: a set of another model or length
    replaces the photos only when a full refresh is asked for.  Stored photos of an unknown model
    may be named by a set that records theirs."""
    stored = stored_photos(client)
    if stored is None:
        return
    stored_model, stored_dim = stored
    if stored_dim == dim and (model.model == stored_model or stored_model == UNKNOWN_MODEL):
        return
    if model.unknown and stored_dim == dim:
        raise EmbeddingModelMismatchError(
            f"{path} does not say which model embedded its photos, and raw.photos holds {stored_model}'s: "
            f"name it with --embed-model {stored_model} if it is that one; nothing was changed"
        )
    raise EmbeddingModelMismatchError(
        f"{path}: {dim}-dimensional photo_embed vectors embedded by {model.model}, raw.photos holds "
        f"{stored_dim}-dimensional ones embedded by {stored_model}: one store holds one model's embeddings, "
        "nothing was changed; load with --full-refresh to replace them (then `dbt build --full-refresh`)"
    )


def _new_staging(
    client: Client, table: RawTable, dim: int, types: dict[str, str], stamp: TableStamp, cluster: str
) -> str:
    name = table.name + STAGING_SUFFIX
    _drop(client, table, name, cluster)
    for statement in table.create(name, dim, types, comment=stamp.comment(), cluster=cluster):
        client.command(statement)
    return qualified(name)


def _drop(client: Client, table: RawTable, name: str, cluster: str) -> None:
    """Drop raw.<name> (on a cluster, its local tables too)."""
    for dropped in dict.fromkeys((name, table.data_table(name, cluster))):
        client.command(f"DROP TABLE IF EXISTS {qualified(dropped)}{on_cluster(cluster)}")


def _insert_settings(cluster: str) -> dict[str, int]:
    # Rows sent through a Distributed table reach the shards before the insert returns: counted next.
    return {"insert_distributed_sync": 1} if cluster else {}


def _file_layout(
    table: RawTable, path: Path, model: FileModel | None
) -> tuple[dict[str, pa.DataType], dict[str, str], list[str]]:
    """The file's columns as loaded (Arrow types, ClickHouse types) and those left out; the model's
    own column (read into the stamp, not a row) is not loaded."""
    consumed = [model.column] if model and model.column else []
    return table.layout(open_parquet(path).schema_arrow, consumed)


def _insert(
    client: Client,
    table: RawTable,
    path: Path,
    total: int,
    dim: int,
    model: FileModel | None,
    stamp: TableStamp,
    progress: Progress | None,
    cluster: str = "",
) -> list[str]:
    """Fill `<table>__loading` with every row of ``path``; return the file's columns that could not
    be loaded."""
    arrow_types, clickhouse_types, left_out = _file_layout(table, path, model)
    staging = _new_staging(client, table, dim, clickhouse_types, stamp, cluster)
    done = 0
    if progress:
        progress(table.name, 0, total)
    for chunk in _batches(table, path, arrow_types, model, dim):
        client.insert_arrow(
            f"{RAW_DATABASE}.{table.name}{STAGING_SUFFIX}", chunk, settings=_insert_settings(cluster) or None
        )
        done += chunk.num_rows
        if progress:
            progress(table.name, done, total)
    _check_count(client, staging, path, total)
    return left_out


def _check_count(client: Client, staging: str, path: Path, total: int) -> None:
    stored = int(client.query(f"SELECT count() FROM {staging}").result_rows[0][0])
    if stored != total:
        raise InputDataError(f"{path}: {total} rows read but {stored} stored in {staging}")


def _live_layout(client: Client, name: str) -> dict[str, str]:
    rows = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String} "
        "ORDER BY position",
        parameters={"db": RAW_DATABASE, "table": name},
    ).result_rows
    return {str(n): str(t) for n, t in rows}


def _insert_changes(
    client: Client,
    table: RawTable,
    path: Path,
    total: int,
    dim: int,
    model: FileModel | None,
    stamp: TableStamp,
    progress: Progress | None,
) -> tuple[Changes, list[str]] | None:
    """Fill `<table>__loading` with the live table's parts (hard links, no copy) and the file's rows
    that differ from them, and mask the live rows of changed and removed photos.  None when the
    live table cannot serve (another layout, rows without hashes): the table is then loaded whole."""
    assert table.hash_column
    arrow_types, clickhouse_types, left_out = _file_layout(table, path, model)
    if _live_layout(client, table.name) != clickhouse_types:
        return None
    # A row's hash covers every column, photo_id included: a file row whose hash is stored is
    # stored as it is. Sorted hashes, looked up batch by batch (a dict of a million ids took 2.5 s).
    live = client.query_arrow(f"SELECT photo_id, {identifier(table.hash_column)} AS hash FROM {qualified(table.name)}")
    live_hashes = live.column("hash").to_numpy()
    known = np.sort(live_hashes)
    staging = _new_staging(client, table, dim, clickhouse_types, stamp, "")
    client.command(f"ALTER TABLE {staging} ATTACH PARTITION ID 'all' FROM {qualified(table.name)}")
    file_hashes, inserted_ids = [], []
    inserted = done = 0
    for chunk in _batches(table, path, arrow_types, model, dim):
        hashes = chunk.column(table.hash_column).to_numpy()
        differs = ~_contains(known, hashes)
        file_hashes.append(hashes)
        if differs.any():
            new_rows = chunk.filter(pa.array(differs))
            client.insert_arrow(f"{RAW_DATABASE}.{table.name}{STAGING_SUFFIX}", new_rows)
            inserted_ids.append(new_rows.column("photo_id").combine_chunks())
            inserted += new_rows.num_rows
        done += chunk.num_rows
        if progress:
            progress(table.name, done, total)
        if inserted > MAX_CHANGED_SHARE * max(len(live_hashes), 1):
            client.command(f"DROP TABLE IF EXISTS {staging}")
            return None
    in_file = np.sort(np.concatenate(file_hashes)) if file_hashes else np.zeros(0, np.uint64)
    stale = ~_contains(in_file, live_hashes)  # stored rows the file no longer has: changed or removed photos
    stale_ids = live.column("photo_id").combine_chunks().filter(pa.array(stale))
    new_ids = pa.concat_arrays(inserted_ids) if inserted_ids else pa.array([], pa.string())
    changed = int(pc.sum(pc.is_in(new_ids, value_set=stale_ids)).as_py() or 0)
    changes = Changes(added=inserted - changed, changed=changed, removed=len(stale_ids) - changed)
    if len(stale_ids):
        gone = qualified(table.name + GONE_SUFFIX)
        client.command(f"DROP TABLE IF EXISTS {gone}")
        client.command(f"CREATE TABLE {gone} (photo_id String, hash UInt64) ENGINE = MergeTree ORDER BY photo_id")
        client.insert_arrow(
            f"{RAW_DATABASE}.{table.name}{GONE_SUFFIX}",
            pa.table({"photo_id": stale_ids, "hash": pa.array(live_hashes[stale], pa.uint64())}),
        )
        client.command(
            f"DELETE FROM {staging} WHERE (photo_id, {identifier(table.hash_column)}) IN "
            f"(SELECT photo_id, hash FROM {gone})"
        )
        client.command(f"DROP TABLE {gone}")
    _check_count(client, staging, path, total)
    return changes, left_out


def _contains(sorted_values: NDArray[np.uint64], values: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Which of ``values`` are in ``sorted_values``."""
    if len(sorted_values) == 0:
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return np.asarray(sorted_values[at] == values)


def _swap_in(client: Client, name: str, load_id: str, cluster: str) -> None:
    commit.swap_in(client, name, load_id, cluster)


def _finish(client: Client, load_id: str, tables: list[str], cluster: str) -> None:
    """Swap every table of a committed load in, then drop the commit record (repeatable)."""
    for name in tables:
        _swap_in(client, name, load_id, cluster)
    commit.drop_record(client, cluster)


def finish_pending_load(client: Client, *, discard: bool = False, cluster: str = "") -> bool:
    """Finish the swaps of a load that was killed after it committed (``discard``: forget it, for a
    load that replaces every table anyway); True when there was one."""
    if not bool(client.command(f"EXISTS DATABASE {identifier(RAW_DATABASE)}")):
        return False
    found = commit.pending(client)
    if found is None:
        return False
    if discard:
        commit.drop_record(client, cluster)
        return False
    _finish(client, *found, cluster)
    return True


def ensure_table(client: Client, table: RawTable, dim: int, cluster: str = "") -> None:
    """Create raw.<table> (and the raw database) when missing; never touch an existing one.
    On ``cluster``, which is checked first (saved searches and keywords come here before any DDL)."""
    if cluster:
        check_cluster(client, cluster)
    client.command(f"CREATE DATABASE IF NOT EXISTS {identifier(RAW_DATABASE)}{on_cluster(cluster)}")
    if not exists(client, table.name):
        for statement in table.create(table.name, dim, cluster=cluster):
            client.command(statement)


def _drop_staging(client: Client, cluster: str) -> None:
    for table in TABLES:
        for suffix in (STAGING_SUFFIX, GONE_SUFFIX):
            with contextlib.suppress(ClickHouseError):
                _drop(client, table, table.name + suffix, cluster)


def _unchanged(client: Client, table: RawTable, digest: str, cluster: str) -> bool:
    stamp = commit.stamp_of(client, data_name(table.name, cluster))
    return stamp is not None and stamp.digest == digest


def load(
    client: Client,
    directory: Path,
    *,
    dim: int | None = None,
    embed_model: str | None = None,
    progress: Progress | None = None,
    full_refresh: bool = False,
    cluster: str = "",
) -> LoadReport:
    """Load ``directory``/photos.parquet and, when present, conversions.parquet,
    keywords.parquet, collections.parquet and colors.parquet.

    The dimension of the vectors is the file's (every vector as long as the
    first; ``dim``, when given, is checked too), and raw.photos' CHECK
    constraint holds it.  Every photo is stored with the model that embedded it
    (raw.photos.embed_model): the one the file records, else ``embed_model``,
    else 'unknown' with a warning in the report.  Photos of another model or
    dimension than the stored ones are refused (EmbeddingModelMismatchError)
    unless ``full_refresh``, which also loads every table whole.  A missing
    file leaves its table as it is (raw.conversions is created empty when
    absent, as the marts read it).  Raises InputDataError for bad files, with
    the store unchanged.  ``cluster``: the tables live sharded on that
    ClickHouse cluster, which is checked first (bildsuche.store.check_cluster).
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
    photos_path = directory / PHOTOS.file_name
    try:
        digests = {t.name: file_digest(directory / t.file_name) for t in present}
    except OSError as exc:
        raise InputDataError(f"{directory}: unreadable file ({exc.strerror or exc})") from exc
    committed = False
    if cluster:
        check_cluster(client, cluster)
    try:
        report.finished_earlier_load = finish_pending_load(client, discard=full_refresh, cluster=cluster)
        model = file_model(photos_path, open_parquet(photos_path), embed_model)
        stored = stored_photos(client)
        same = set()
        if not full_refresh:
            for t in present:
                # The photos file is the one loaded before only if it names the same model again.
                if _unchanged(client, t, digests[t.name], cluster) and (
                    t is not PHOTOS or (stored or ("", 0))[0] == model.model
                ):
                    same.add(t.name)
        totals, found_dim = {}, None
        for t in present:
            path = directory / t.file_name
            if t.name in same:
                if t is PHOTOS:  # validated when it was loaded; its first vector tells its dimension
                    found_dim = first_dimension(path, open_parquet(path))
                continue
            totals[t.name], table_dim = header(t, path, dim)
            found_dim = table_dim if t is PHOTOS else found_dim
        if dim is not None and found_dim is not None and found_dim != dim:
            raise InputDataError(f"{photos_path}: the photos have {found_dim}-dimensional vectors, expected {dim}")
        if totals.get(PHOTOS.name) == 0 or found_dim is None:
            raise InputDataError(f"{photos_path}: no photos; loading it would empty raw.photos")
        report.embed_model, report.dim = model.model, found_dim
        if model.unknown:
            report.warnings.append(
                f"{photos_path} does not say which model embedded its photos: raw.photos.embed_model is "
                f"'{model.model}', and saved searches are refused until it is known; load again with "
                "--embed-model NAME (for example openai/clip-vit-base-patch32)"
            )
        if not full_refresh:
            _check_embeddings(client, photos_path, model, found_dim)
        client.command(f"CREATE DATABASE IF NOT EXISTS {identifier(RAW_DATABASE)}{on_cluster(cluster)}")
        _drop_staging(client, cluster)  # left by a load that was killed: they would outlive this one
        load_id = uuid.uuid4().hex
        staged: list[str] = []
        for table in present:
            if table.name in same:
                report.unchanged.append(table.name)
                continue
            started = time.perf_counter()
            stamp = TableStamp(load_id, digests[table.name])
            path = directory / table.file_name
            table_model = model if table is PHOTOS else None
            total = totals[table.name]
            result = None
            if table.hash_column and not full_refresh and not cluster and exists(client, table.name):
                result = _insert_changes(client, table, path, total, found_dim, table_model, stamp, progress)
            if result is not None:
                report.changes[table.name], left_out = result
            else:
                left_out = _insert(client, table, path, total, found_dim, table_model, stamp, progress, cluster)
            if left_out:
                report.columns_left_out[table.name] = left_out
            report.rows[table.name] = total
            report.seconds[table.name] = time.perf_counter() - started
            staged.append(table.name)
        if staged:
            commit.write_record(client, load_id, staged, cluster)
            committed = True
            _finish(client, load_id, staged, cluster)
        report.skipped = [table.name for table in TABLES if table not in present]
        # The marts read conversions and saved searches (python_embed query fills those).
        ensure_table(client, CONVERSIONS, found_dim, cluster)
        ensure_table(client, SEARCH_QUERIES, found_dim, cluster)
    except ClickHouseError as exc:
        _after_failure(client, committed, cluster)
        raise StoreUnavailableError(f"loading failed, {_state(committed)}: {exc}") from exc
    except OSError as exc:  # the embedded engine's client writes inserts through files: a full disk
        _after_failure(client, committed, cluster)
        raise StoreUnavailableError(f"loading failed, {_state(committed)}: {exc.strerror or exc}") from exc
    except BaseException:
        _after_failure(client, committed, cluster)
        raise
    return report


def _after_failure(client: Client, committed: bool, cluster: str) -> None:
    # Once committed, the loading tables are the set to swap in: the next load finishes it.
    if not committed:
        _drop_staging(client, cluster)


def _state(committed: bool) -> str:
    if committed:
        return "the new tables are complete and the next load swaps them in"
    return "raw tables unchanged"
