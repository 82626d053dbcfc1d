"""The raw tables: their DDL and the parquet columns they are loaded from.

Each table has required columns with fixed types; any further column of the
parquet file (photo metadata, the other conversion columns, ...) is loaded
too, as a Nullable column of the type its Arrow type maps to.  Columns of
types with no mapping are left out and reported.  raw.photos also stores the
embedding model of every row (seeds_loader/embed_model.py).

On a ClickHouse cluster (docs/scale-out.md) a photo-keyed table is a table per
shard, `<name>_local` (replicated within its shard), behind a Distributed
table of the plain name, sharded by the key the dbt models shard by, so a
photo's rows all live on one shard; the tables written row by row by other
commands (saved searches, keyword embeddings), small, are replicated to every
node.  Every statement then goes ON CLUSTER.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pyarrow as pa

from bildsuche.dataset import EMBED_MODEL_COLUMN
from bildsuche.sqltext import identifier, string_literal

RAW_DATABASE = "raw"
# The key every photo-keyed table is sharded by, in the raw tables and the dbt models alike
# (dbt_project.yml): a photo, its raw row and its conversions on one shard.
SHARDING_KEY = "cityHash64(photo_id)"
# dbt-clickhouse's default suffix of the per-shard tables.
LOCAL_SUFFIX = "_local"


def qualified(name: str) -> str:
    return f"{identifier(RAW_DATABASE)}.{identifier(name)}"


def on_cluster(cluster: str) -> str:
    return f" ON CLUSTER {identifier(cluster)}" if cluster else ""


def replicated(engine: str, scope: str) -> str:
    """``engine`` (e.g. 'ReplacingMergeTree(saved_at)') replicated among the replicas of a shard
    (scope '{shard}') or among every node ('all'); {uuid}, {shard} and {replica} are expanded by
    each server (the same {uuid} on every node of an ON CLUSTER CREATE)."""
    name, _, arguments = engine.partition("(")
    args = [f"'/clickhouse/tables/{{uuid}}/{scope}'", "'{replica}'"]
    if arguments.rstrip(")").strip():
        args.append(arguments.rstrip(")").strip())
    return f"Replicated{name.strip()}({', '.join(args)})"


def _extra_type(arrow_type: pa.DataType) -> tuple[pa.DataType, str] | None:
    """(Arrow type to cast to, ClickHouse type) of an extra column, or None."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_null(arrow_type):
        return pa.string(), "Nullable(String)"
    if pa.types.is_boolean(arrow_type):
        return pa.bool_(), "Nullable(Bool)"
    if pa.types.is_integer(arrow_type):
        return pa.int64(), "Nullable(Int64)"
    if pa.types.is_floating(arrow_type):
        return pa.float64(), "Nullable(Float64)"
    if pa.types.is_timestamp(arrow_type):
        return pa.timestamp("ms"), "Nullable(DateTime64(3))"
    if pa.types.is_date(arrow_type):
        return pa.date32(), "Nullable(Date32)"
    return None


@dataclass(frozen=True)
class RawTable:
    name: str
    file_name: str
    # Arrow type each required parquet column is cast to before insertion.
    columns: dict[str, pa.DataType]
    order_by: str
    engine: str = "MergeTree"
    vector_column: str = "photo_embed"
    # A column the loader fills with the embedding model of the file, not read from it.
    model_column: str | None = None
    # A column the loader fills with a hash of each row as loaded (seeds_loader/rowhash.py), not
    # read from the file: what lets a changed file be loaded as the rows that changed.
    hash_column: str | None = None
    # Keyed by photo_id: sharded on a cluster (else replicated to every node).
    sharded: bool = True

    def fixed_types(self) -> tuple[dict[str, pa.DataType], dict[str, str]]:
        """Arrow and ClickHouse types of the columns every table of this kind has."""
        arrow = dict(self.columns)
        clickhouse = {name: _ch_type(t) for name, t in self.columns.items()}
        if self.model_column:
            arrow[self.model_column] = pa.string()
            clickhouse[self.model_column] = "LowCardinality(String)"
        if self.hash_column:
            arrow[self.hash_column] = pa.uint64()
            clickhouse[self.hash_column] = "UInt64"
        return arrow, clickhouse

    def layout(
        self, schema: pa.Schema, consumed: Collection[str] = ()
    ) -> tuple[dict[str, pa.DataType], dict[str, str], list[str]]:
        """Arrow types to cast to and ClickHouse types of every loaded column, and the columns
        left out.  ``consumed`` columns of the file (the per-row model) are not loaded as such."""
        arrow, clickhouse = self.fixed_types()
        skipped = []
        for field in schema:
            if field.name == self.hash_column:
                skipped.append(field.name)  # the loader's own column: a file's column of that name cannot load
                continue
            if field.name in arrow or field.name in consumed:
                continue
            mapped = _extra_type(field.type)
            if mapped is None or not _insertable_name(field.name):
                skipped.append(field.name)
                continue
            arrow[field.name], clickhouse[field.name] = mapped
        return arrow, clickhouse, skipped

    def ddl(
        self,
        qualified_name: str,
        dim: int,
        clickhouse_types: dict[str, str] | None = None,
        comment: str = "",
        *,
        cluster: str = "",
        engine: str | None = None,
    ) -> str:
        types = clickhouse_types or self.fixed_types()[1]
        # Column names come from the user's files (TSV headers, parquet schemas): quoted, whatever they hold.
        cols = ",\n    ".join(f"{identifier(name)} {ch_type}" for name, ch_type in types.items())
        constraint = ""
        if self.vector_column in self.columns:
            constraint = f",\n    CONSTRAINT vector_len CHECK length({self.vector_column}) = {int(dim)}"
        return (
            f"CREATE TABLE {qualified_name}{on_cluster(cluster)} (\n    {cols}{constraint}\n)\n"
            f"ENGINE = {engine or self.engine}\nORDER BY {self.order_by}"
            + (f"\nCOMMENT {string_literal(comment)}" if comment else "")
        )

    def data_table(self, name: str, cluster: str) -> str:
        """The table that holds the rows of raw.<name>: on a cluster, a sharded table's local one."""
        return name + LOCAL_SUFFIX if cluster and self.sharded else name

    def create(
        self,
        name: str,
        dim: int,
        clickhouse_types: dict[str, str] | None = None,
        comment: str = "",
        cluster: str = "",
    ) -> list[str]:
        """The statements that create raw.<name> as this kind of table (``comment`` on the table
        holding the rows), on one server or on ``cluster``."""
        if not cluster:
            return [self.ddl(qualified(name), dim, clickhouse_types, comment)]
        if not self.sharded:
            engine = replicated(self.engine, "all")
            return [self.ddl(qualified(name), dim, clickhouse_types, comment, cluster=cluster, engine=engine)]
        local = self.data_table(name, cluster)
        engine = replicated(self.engine, "{shard}")
        return [
            self.ddl(qualified(local), dim, clickhouse_types, comment, cluster=cluster, engine=engine),
            distributed_ddl(name, local, cluster),
        ]


def distributed_ddl(name: str, local: str, cluster: str) -> str:
    """raw.<name> as the Distributed table over the shards' raw.<local>, made anew with its
    structure (a table loaded with other columns replaces the local tables)."""
    return (
        f"CREATE OR REPLACE TABLE {qualified(name)}{on_cluster(cluster)} AS {qualified(local)} "
        f"ENGINE = Distributed({string_literal(cluster)}, {string_literal(RAW_DATABASE)}, {string_literal(local)}, "
        f"{SHARDING_KEY})"
    )


def _insertable_name(name: str) -> bool:
    """Whether the insert client names this column as it is: clickhouse-connect passes a name that
    looks quoted already (`x`, "x") through unquoted, which would then name another column."""
    return bool(name) and "`" not in name and not (len(name) > 1 and name[0] == name[-1] == '"')


def _ch_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type):
        return f"Array({_ch_type(arrow_type.value_type)})"
    return {
        pa.int64(): "Int64",
        pa.string(): "String",
        pa.float32(): "Float32",
        pa.timestamp("ms"): "DateTime64(3)",
    }[arrow_type]


PHOTOS = RawTable(
    name="photos",
    file_name="photos.parquet",
    columns={
        "id": pa.int64(),
        "photo_id": pa.string(),
        "photo_image_url": pa.string(),
        "photo_embed": pa.list_(pa.float32()),
    },
    order_by="photo_id",
    model_column=EMBED_MODEL_COLUMN,
    hash_column="row_hash",
)

# Sorted by photo_id: every mart looks conversions up per photo, and the
# tutorial's ORDER BY id would make each of those lookups a full scan.
CONVERSIONS = RawTable(
    name="conversions",
    file_name="conversions.parquet",
    columns={
        "id": pa.int64(),
        "photo_id": pa.string(),
        "keyword": pa.string(),
    },
    order_by="(photo_id, id)",
)

# Unsplash Lite's other tables, when python_embed found them in the release.
KEYWORDS = RawTable("keywords", "keywords.parquet", {"photo_id": pa.string()}, "photo_id")
COLLECTIONS = RawTable("collections", "collections.parquet", {"photo_id": pa.string()}, "photo_id")
COLORS = RawTable("colors", "colors.parquet", {"photo_id": pa.string()}, "photo_id")

TABLES = (PHOTOS, CONVERSIONS, KEYWORDS, COLLECTIONS, COLORS)

# Saved searches, written by `python_embed query` (not loaded from files).  A
# query saved again under its name replaces the earlier one: the newest row wins.
# `model` is the image model whose space the embedding is in, `text_model` the encoder of a
# text search (the CLIP model's own text tower, or a multilingual one trained into its space).
SEARCH_QUERIES = RawTable(
    name="search_queries",
    file_name="",
    columns={
        "name": pa.string(),
        "kind": pa.string(),
        "query": pa.string(),
        "model": pa.string(),
        "embedding": pa.list_(pa.float32()),
        "saved_at": pa.timestamp("ms"),
        "text_model": pa.string(),
    },
    order_by="name",
    engine="ReplacingMergeTree(saved_at)",
    vector_column="embedding",
    sharded=False,
)

# Search keywords embedded by the photos' CLIP text tower (`python_embed keywords`), once per
# model and keyword: the keyword_search_relevance mart compares them with the photos.  A cache
# of several models, so no length CHECK: each model has its own dimension.
KEYWORD_EMBEDDINGS = RawTable(
    name="keyword_embeddings",
    file_name="",
    columns={
        "model": pa.string(),
        "keyword": pa.string(),
        "embedding": pa.list_(pa.float32()),
        "embedded_at": pa.timestamp("ms"),
    },
    order_by="(model, keyword)",
    engine="ReplacingMergeTree(embedded_at)",
    vector_column="",
    sharded=False,
)
