"""Building into a folder that holds an earlier data set: embed only what changed.

A photo of the earlier photos.parquet keeps its embedding when the new build
uses the same model and the photo comes back with the same photo_id and
photo_image_url (for a local file: one not modified since that file was
written).  Nothing is downloaded for it and the model never sees it, so the
download cache may be gone.  Everything else (new photos, changed URLs,
photos that failed before) is embedded as in a fresh build, and the files
are written from the new source alone, so photos that left it leave every
file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bildsuche.dataset import FAILURES_FILE, PHOTOS_FILE, recorded_model
from python_embed.sources import PATH_COLUMN


@dataclass
class Earlier:
    """What the earlier data set in the output folder offers the new build."""

    embeddings: pa.Table  # photo_id, photo_embed of the photos that keep theirs
    photo_ids: set[str]  # every photo of the earlier photos.parquet
    failed_ids: set[str]  # every photo of the earlier failures.parquet


NOTHING = Earlier(
    pa.table({"photo_id": pa.array([], pa.string()), "photo_embed": pa.array([], pa.list_(pa.float32()))}),
    set(),
    set(),
)


def _read(path: Path, columns: list[str]) -> pa.Table | None:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, KeyError):
        return None  # no earlier set, or one this build cannot read: embed everything


def earlier_set(out: Path, photos: pa.Table, model: str) -> Earlier:
    """The embeddings of ``photos`` (photo_id, photo_image_url[, local path]) that the data set
    already in ``out`` holds for ``model``."""
    path = Path(out) / PHOTOS_FILE
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError):
        return NOTHING
    failures = _read(Path(out) / FAILURES_FILE, ["photo_id"])
    failed = set(failures.column("photo_id").to_pylist()) if failures is not None else set()
    previous = _read(path, ["photo_id", "photo_image_url", "photo_embed"])
    if previous is None:
        return NOTHING
    previous = previous.combine_chunks()
    ids = set(previous.column("photo_id").to_pylist())
    if recorded_model(schema.metadata) != model:
        return Earlier(NOTHING.embeddings, ids, failed)  # another model embeds everything again
    position = pc.index_in(photos.column("photo_id"), value_set=previous.column("photo_id"))
    found = pc.is_valid(position)
    same_url = pc.equal(
        photos.column("photo_image_url"), previous.column("photo_image_url").take(pc.fill_null(position, 0))
    )
    keep = pc.and_(found, pc.fill_null(same_url, False))
    if PATH_COLUMN in photos.column_names:
        written = os.stat(path).st_mtime_ns
        unmodified = [_unmodified(p, written) for p in photos.column(PATH_COLUMN).to_pylist()]
        keep = pc.and_(keep, pa.array(unmodified))
    kept = photos.filter(keep)
    vectors = previous.column("photo_embed").take(position.filter(keep))
    embeddings = pa.table({"photo_id": kept.column("photo_id"), "photo_embed": vectors.cast(pa.list_(pa.float32()))})
    return Earlier(embeddings, ids, failed)


def _unmodified(path: str | None, written_ns: int) -> bool:
    """A local picture not changed since the earlier set was written (a path of no file: changed)."""
    if not path:
        return True
    try:
        return os.stat(path).st_mtime_ns < written_ns
    except OSError:
        return False
