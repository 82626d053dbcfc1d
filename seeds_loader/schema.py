"""The raw tables: their DDL and the parquet columns they are loaded from."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

RAW_DATABASE = "raw"
DEFAULT_DIM = 512


@dataclass(frozen=True)
class RawTable:
    name: str
    file_name: str
    # Arrow type each required parquet column is cast to before insertion.
    columns: dict[str, pa.DataType]
    order_by: str

    def ddl(self, qualified_name: str, dim: int) -> str:
        cols = ",\n    ".join(f"`{name}` {_ch_type(t)}" for name, t in self.columns.items())
        constraint = ""
        if "photo_embed" in self.columns:
            constraint = f",\n    CONSTRAINT vector_len CHECK length(photo_embed) = {int(dim)}"
        return (
            f"CREATE TABLE {qualified_name} (\n    {cols}{constraint}\n)\nENGINE = MergeTree\nORDER BY {self.order_by}"
        )


def _ch_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type):
        return f"Array({_ch_type(arrow_type.value_type)})"
    return {
        pa.int64(): "Int64",
        pa.string(): "String",
        pa.float32(): "Float32",
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

TABLES = (PHOTOS, CONVERSIONS)
