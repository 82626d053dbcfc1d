"""`python_embed build`: source -> fetch -> CLIP -> photos/conversions/failures.parquet.

Resumable (see checkpoint.py), honest about every photo it could not embed
(failures.parquet: photo_id, url, stage, reason), and writing each output file
atomically.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc

from bildsuche.dataset import CACHE_DIR, CONVERSIONS_FILE, FAILURES_FILE, PHOTOS_FILE
from bildsuche.errors import InputDataError, UsageError
from python_embed.checkpoint import Checkpoint
from python_embed.demo_model import DEMO_MODEL_NAME, model_name
from python_embed.embedder import ClipEmbedder, Precision, load_preprocess
from python_embed.fetch import FetchConfig, Fetcher, ImageCache
from python_embed.pipeline import Progress, StageTimes, embed_sources
from python_embed.reuse import NOTHING, earlier_set
from python_embed.sources import PATH_COLUMN, embedded_only, read_source
from python_embed.types import Embeddings, Failure, PhotoSource
from python_embed.writer import failures_table, stale_parts, with_model, write_all


@dataclass(frozen=True)
class RayOptions:
    """Embed on Ray Data (python_embed.ray_pipeline) instead of in this process."""

    # Ray's own address forms: "local" starts Ray here, "auto" joins the cluster this machine
    # is part of, "host:port" a cluster's head, "ray://host:port" a head through Ray Client.
    address: str = "local"
    model: str = ""  # what the actors load: a model name or a directory every node can read
    precision: Precision = "auto"


@dataclass
class BuildOptions:
    # The name the embedder records (ClipEmbedder.name): known, an unchanged night loads no model.
    model: str | None = None
    limit: int | None = None
    batch_size: int = 32
    workers: int = 16
    restart: bool = False
    cache_dir: Path | None = None
    fetch: FetchConfig = field(default_factory=FetchConfig)
    ray: RayOptions | None = None


@dataclass
class BuildReport:
    out: Path
    model: str
    model_is_demo: bool
    photos: int
    embedded: int
    resumed: int
    precomputed: int
    reused: int  # embeddings kept from the data set already in the output folder
    removed: int  # photos of that data set no longer in the source
    retried: int  # photos that failed in that data set and are embedded now
    downloads: int
    failures: Counter[str]
    conversions: int
    times: StageTimes
    seconds: float


def _id_column(table: pa.Table) -> pa.Table:
    """The tutorial's id: kept when the source has one, else the row number."""
    if "id" in table.column_names:
        return table
    return table.add_column(0, "id", pa.array(range(table.num_rows), pa.int64()))


def _photo_ids_column(photos: pa.Table) -> pa.Table:
    """The photos' id: kept when the source has one, else a number derived from photo_id alone,
    so a photo keeps its id from build to build (a row number would renumber every photo after
    one that left the source, and every one of them would then count as changed)."""
    if "id" in photos.column_names:
        return photos
    ids = stable_ids(photos.column("photo_id").to_pylist())
    return photos.add_column(0, "id", pa.array(ids, pa.int64()))


def stable_ids(photo_ids: list[str]) -> list[int]:
    """A positive 63-bit id per photo_id (blake2b); the rare collision goes to the next free number,
    in photo_id order."""
    wanted = {
        pid: int.from_bytes(hashlib.blake2b(pid.encode(), digest_size=8).digest(), "big") >> 1 for pid in photo_ids
    }
    taken: set[int] = set()
    given: dict[str, int] = {}
    for pid in sorted(wanted, key=lambda p: (wanted[p], p)):
        value = wanted[pid]
        while value in taken:
            value = (value + 1) % (1 << 63)
        taken.add(value)
        given[pid] = value
    return [given[pid] for pid in photo_ids]


def _unusable_embeddings(photos: pa.Table) -> list[str | None]:
    """Per row, why a precomputed photo_embed cannot be used (None: usable or absent).

    Vectors of one length are required: a file mixing lengths mixes models, and is refused.
    """
    if "photo_embed" not in photos.column_names:
        return [None] * photos.num_rows
    embeds = photos.column("photo_embed").combine_chunks()
    lengths = pc.list_value_length(embeds)
    finite = pc.fill_null(pc.is_finite(pc.list_flatten(embeds)), False)
    bad_rows = set(pc.list_parent_indices(embeds).filter(pc.invert(finite)).to_pylist())
    found = {n for n in pc.unique(lengths.filter(pc.greater(lengths, 0))).to_pylist() if n is not None}
    if len(found) > 1:
        raise InputDataError(
            f"photo_embed holds vectors of {len(found)} lengths ({', '.join(map(str, sorted(found)))}): "
            "embeddings of one model have one length"
        )
    reasons: list[str | None] = []
    for i, length in enumerate(lengths.to_pylist()):
        if length == 0:
            reasons.append("photo_embed is empty")
        elif i in bad_rows:
            reasons.append("photo_embed has NaN, infinite or null values")
        else:
            reasons.append(None)
    return reasons


def _read_failures(photos: pa.Table) -> tuple[pa.Table, list[Failure]]:
    """Drop rows no build can embed (no id, no URL, a repeated id, a broken embedding given), as failures."""
    ids = photos.column("photo_id").to_pylist()
    urls = photos.column("photo_image_url").to_pylist()
    unusable = _unusable_embeddings(photos)
    keep, failures, seen = [], [], set()
    for i, (pid, url, broken) in enumerate(zip(ids, urls, unusable, strict=True)):
        if not pid:
            failures.append(Failure(f"<row {i}>", url or "", "read", "no photo_id"))
        elif pid in seen:
            failures.append(Failure(pid, url or "", "read", "duplicate photo_id"))
        elif broken:
            failures.append(Failure(pid, url or "", "read", broken))
        elif not url and (PATH_COLUMN not in photos.column_names):
            failures.append(Failure(pid, "", "read", "no photo_image_url"))
        else:
            seen.add(pid)
            keep.append(i)
    return photos.take(keep), failures


def _assemble(photos: pa.Table, need: pa.Array | None, computed: pa.Table) -> pa.Table:
    """Photos that have an embedding (precomputed, or from the shards or the earlier set), in source order."""
    vectors = [computed]
    if need is not None:
        given = photos.filter(pc.invert(need)).select(["photo_id", "photo_embed"])
        vectors.append(given.cast(computed.schema))
        photos = photos.drop_columns(["photo_embed"])
    if PATH_COLUMN in photos.column_names:
        photos = photos.drop_columns([PATH_COLUMN])
    known = pa.concat_tables(vectors).combine_chunks()
    # Arrow joins carry no list columns: look each photo's vector up by position instead.
    position = pc.index_in(photos.column("photo_id"), value_set=known.column("photo_id"))
    found = pc.is_valid(position)
    # One list type whatever the vectors' origin (shards read back name their items differently),
    # so an unchanged night writes the same bytes and the loader sees the file unchanged.
    embeds = known.column("photo_embed").take(position.filter(found)).cast(pa.list_(pa.float32()))
    joined = photos.filter(found).append_column("photo_embed", embeds)
    front = ["id", "photo_id", "photo_image_url", "photo_embed"]
    return joined.select(front + [c for c in joined.column_names if c not in front])


def _ray_pipeline() -> ModuleType:
    """python_embed.ray_pipeline, or a clear error where Ray is not installed."""
    try:
        from python_embed import ray_pipeline
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise UsageError(
            f"--ray needs Ray Data, which is not installed ({exc}): "
            "install the ray extra (pip install '.[ray]' in a checkout)"
        ) from exc
    return ray_pipeline


def build(
    source: str,
    out: Path,
    embedder_factory: Callable[[], ClipEmbedder],
    options: BuildOptions | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    opts = options or BuildOptions()
    if opts.limit is not None and opts.limit < 1:
        raise UsageError(f"--limit must be positive, got {opts.limit}")
    if opts.batch_size < 1 or opts.workers < 1:
        raise UsageError("--batch-size and --concurrency must be positive")
    on_ray = _ray_pipeline() if opts.ray is not None else None
    started = time.perf_counter()
    out = Path(out)
    for part in stale_parts(out) if out.is_dir() else []:
        part.unlink(missing_ok=True)  # left by a build killed while writing its files
    data = read_source(source, out)
    if data.photos.num_rows == 0:
        raise InputDataError(f"{source}: no photos to embed")
    photos = data.photos.slice(0, opts.limit) if opts.limit else data.photos
    photos, failures = _read_failures(photos)
    photos = _photo_ids_column(photos)

    has_embed = "photo_embed" in photos.column_names
    need = pc.is_null(photos.column("photo_embed")) if has_embed else pa.array([True] * photos.num_rows)
    embedder = None
    model = data.model or "unknown"
    earlier = NOTHING
    # On Ray the actors load the model; this process needs its name only.
    known = opts.model if opts.model is not None or opts.ray is None else model_name(opts.ray.model)
    if pc.any(need).as_py():
        if known is None:
            embedder = embedder_factory()
        model = known if known is not None else embedder.name if embedder else "unknown"
        earlier = earlier_set(out, photos.filter(need), model)
        reusable = pc.is_in(photos.column("photo_id"), value_set=earlier.embeddings.column("photo_id"))
        need = pc.and_(need, pc.invert(reusable))
        if embedder is None and on_ray is None and pc.any(need).as_py():
            embedder = embedder_factory()
    checkpoint = Checkpoint(out, model, source, restart=opts.restart)
    done = checkpoint.done_ids()
    paths = photos.column(PATH_COLUMN).to_pylist() if PATH_COLUMN in photos.column_names else [None] * len(need)
    todo = [
        PhotoSource(pid, url or "", path or "")
        for pid, url, path, needed in zip(
            photos.column("photo_id").to_pylist(),
            photos.column("photo_image_url").to_pylist(),
            paths,
            need.to_pylist(),
            strict=True,
        )
        if needed and pid not in done
    ]
    cache_dir = opts.cache_dir or out / CACHE_DIR
    fetcher = Fetcher(ImageCache(cache_dir), opts.fetch)
    times = StageTimes()
    downloads = 0

    def sink(batch: list[PhotoSource], embeddings: Embeddings, failed: list[Failure]) -> None:
        checkpoint.append(batch, embeddings)
        failures.extend(failed)

    if todo and on_ray is not None and opts.ray is not None:
        job = on_ray.RayJob(
            model=opts.ray.model,
            precision=opts.ray.precision,
            preprocess=load_preprocess(opts.ray.model),
            cache_dir=cache_dir.resolve(),
            fetch=opts.fetch,
            batch_size=opts.batch_size,
            threads=opts.workers,
        )
        downloads = on_ray.embed_on_ray(todo, sink, opts.ray.address, job, progress=progress, times=times)
    elif todo:
        assert embedder is not None
        embed_sources(
            todo,
            embedder,
            sink,
            fetcher=fetcher,
            batch_size=opts.batch_size,
            workers=opts.workers,
            progress=progress,
            times=times,
        )

    computed = pa.concat_tables([checkpoint.embeddings(), earlier.embeddings.cast(checkpoint.embeddings().schema)])
    result = _assemble(photos, pc.is_null(photos.column("photo_embed")) if has_embed else None, computed)
    embedded_ids = result.column("photo_id").combine_chunks() if result.num_rows else pa.array([], pa.string())
    conversions = embedded_only(data.conversions, embedded_ids)
    conversions_out = _id_column(conversions) if conversions is not None else None
    files = {out / PHOTOS_FILE: with_model(result, model)}
    if conversions_out is not None:
        files[out / CONVERSIONS_FILE] = conversions_out
    for name, table in data.extra.items():
        filtered = embedded_only(table, embedded_ids)
        assert filtered is not None
        files[out / f"{name}.parquet"] = filtered
    files[out / FAILURES_FILE] = failures_table(failures)
    write_all(files)  # one set: a full disk leaves the earlier set whole, never half of each
    checkpoint.clear()
    embedded_set = set(embedded_ids.to_pylist())
    source_ids = set(data.photos.column("photo_id").to_pylist())
    return BuildReport(
        out=out,
        model=model,
        model_is_demo=embedder.is_demo if embedder else model == DEMO_MODEL_NAME,
        photos=data.photos.num_rows if not opts.limit else min(opts.limit, data.photos.num_rows),
        embedded=len(todo) - sum(1 for f in failures if f.stage in ("fetch", "decode")),
        resumed=len(done & set(photos.column("photo_id").to_pylist())),
        precomputed=int(pc.sum(pc.is_valid(photos.column("photo_embed"))).as_py() or 0) if has_embed else 0,
        reused=earlier.embeddings.num_rows,
        removed=len(earlier.photo_ids - source_ids),
        retried=len(earlier.failed_ids & embedded_set),
        downloads=fetcher.downloads + downloads,
        failures=Counter(f"{f.stage}:{f.reason.split(':')[0]}" for f in failures),
        conversions=conversions_out.num_rows if conversions_out is not None else 0,
        times=times,
        seconds=time.perf_counter() - started,
    )
