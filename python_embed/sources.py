"""Photo metadata from every kind of source, as Arrow tables.

- ``sample`` (or ``sample:N`` for N photos): the built-in sample (local JPEGs,
  conversions with keywords);
- an Unsplash Lite release, zipped or unpacked;
- the tutorial's published parquet (`photos-all.parquet`, `conversions-all.parquet`),
  as local files, or ``hf:myscale/unsplash-examples`` through `datasets` when online;
- a folder of images (photo_id = relative path without extension).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bildsuche.errors import InputDataError, UsageError

SAMPLE = "sample"
MAX_SAMPLE = 100_000
HF_PREFIX = "hf:"
PATH_COLUMN = "_local_path"
TUTORIAL_PHOTOS = ("photos-all.parquet", "photos.parquet")
TUTORIAL_CONVERSIONS = ("conversions-all.parquet", "conversions.parquet")


@dataclass
class SourceData:
    photos: pa.Table  # photo_id, photo_image_url, metadata...; photo_embed and _local_path when known
    conversions: pa.Table | None = None
    extra: dict[str, pa.Table] = field(default_factory=dict)  # keywords, collections, colors
    model: str | None = None  # the model of embeddings the source already carries


def _sample(work_dir: Path, count: str) -> SourceData:
    from python_embed.sample import generate_sample

    if count and not (count.isdigit() and 1 <= int(count) <= MAX_SAMPLE):
        raise UsageError(f"{SAMPLE}:N takes a whole number of photos from 1 to {MAX_SAMPLE}, got {count!r}")
    sample = generate_sample(work_dir / "sample-images", **({"photos": int(count)} if count else {}))
    photos = pa.table(
        {
            "photo_id": [p.photo_id for p in sample.photos],
            "photo_image_url": [p.photo_image_url for p in sample.photos],
            "category": [sample.categories[p.photo_id] for p in sample.photos],
            PATH_COLUMN: [p.path for p in sample.photos],
        }
    )
    conversions = pa.table(
        {"photo_id": [c.photo_id for c in sample.conversions], "keyword": [c.keyword for c in sample.conversions]}
    )
    return SourceData(photos, conversions)


def _folder(root: Path) -> SourceData:
    from python_embed.folder import scan_folder

    found = scan_folder(root)
    photos = pa.table(
        {
            "photo_id": pa.array([p.photo_id for p in found], pa.string()),
            "photo_image_url": pa.array([p.photo_image_url for p in found], pa.string()),
            PATH_COLUMN: pa.array([p.path for p in found], pa.string()),
        }
    )
    return SourceData(photos)


def _unsplash(location: Path) -> SourceData:
    from python_embed.unsplash import Release

    release = Release(location)
    try:
        photos = release.read("photos")
        assert photos is not None
        extra = {name: t for name in ("keywords", "collections", "colors") if (t := release.read(name)) is not None}
        return SourceData(photos, release.read("conversions"), extra)
    finally:
        release.close()


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"{path}: not a readable parquet file ({exc})") from exc


def _tutorial_tables(photos: pa.Table, conversions: pa.Table | None) -> SourceData:
    if "photo_embed" in photos.column_names:
        embed = photos.column("photo_embed")
        value_type = embed.type.value_type if hasattr(embed.type, "value_type") else None
        if value_type is None or not pa.types.is_floating(value_type):
            raise InputDataError(f"photo_embed has type {embed.type}, expected a list of floats")
        photos = photos.set_column(
            photos.column_names.index("photo_embed"), "photo_embed", embed.cast(pa.list_(pa.float32()))
        )
    return SourceData(photos, conversions, model="openai/clip-vit-base-patch32")


def _tutorial_parquet(path: Path) -> SourceData:
    if path.is_dir():
        photos_file = next((path / n for n in TUTORIAL_PHOTOS if (path / n).is_file()), None)
        if photos_file is None:
            raise InputDataError(f"{path}: no {' or '.join(TUTORIAL_PHOTOS)}")
        conv_file = next((path / n for n in TUTORIAL_CONVERSIONS if (path / n).is_file()), None)
    else:
        photos_file = path
        sibling = path.name.replace("photos", "conversions")
        conv_file = path.with_name(sibling) if sibling != path.name and path.with_name(sibling).is_file() else None
    conversions = _read_parquet(conv_file) if conv_file else None
    return _tutorial_tables(_read_parquet(photos_file), conversions)


def _hugging_face(name: str) -> SourceData:
    try:
        import datasets
    except ImportError as exc:
        raise UsageError("reading from the Hugging Face hub needs the `datasets` package") from exc
    try:
        photos = datasets.load_dataset(name, data_files="photos-all.parquet", split="train")
        conversions = datasets.load_dataset(name, data_files="conversions-all.parquet", split="train")
    except Exception as exc:  # the hub client raises many types; all mean "not reachable here"
        raise InputDataError(f"cannot read {name} from the Hugging Face hub: {exc}") from exc
    return _tutorial_tables(photos.data.table, conversions.data.table)


def read_source(source: str, work_dir: Path) -> SourceData:
    name, colon, count = source.partition(":")
    if name == SAMPLE and (not colon or count):
        data = _sample(work_dir, count)
    elif source.startswith(HF_PREFIX):
        data = _hugging_face(source[len(HF_PREFIX) :])
    else:
        path = Path(source)
        if not path.exists():
            raise UsageError(f"unknown source {source!r}: give a folder, a file, {SAMPLE!r} or hf:NAME")
        if path.suffix == ".zip" or (path.is_dir() and _looks_like_unsplash(path)):
            data = _unsplash(path)
        elif path.suffix == ".parquet" or (path.is_dir() and any((path / n).is_file() for n in TUTORIAL_PHOTOS)):
            data = _tutorial_parquet(path)
        elif path.is_dir():
            data = _folder(path)
        else:
            raise UsageError(f"{source}: not a folder, a .zip or a .parquet file")
    for required in ("photo_id", "photo_image_url"):
        if required not in data.photos.column_names:
            raise InputDataError(f"{source}: photos have no {required} column")
    return data


def _looks_like_unsplash(path: Path) -> bool:
    from python_embed.unsplash import PART_RE

    return any(PART_RE.match(p.name) for p in path.rglob("photos.*"))


def embedded_only(table: pa.Table | None, photo_ids: pa.Array) -> pa.Table | None:
    """Rows of ``table`` whose photo_id is among ``photo_ids`` (as the tutorial keeps them)."""
    if table is None or "photo_id" not in table.column_names:
        return table
    return table.filter(pc.is_in(table.column("photo_id"), value_set=photo_ids))
