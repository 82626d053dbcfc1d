"""`python_embed build --ray`: fetch -> decode -> embed as a Ray Data pipeline.

The driver does what the single-process build does around the embedding (reads
the source, keeps reusable and checkpointed embeddings, writes the files); only
the photos left to embed go through Ray:

- fetch: CPU tasks, each downloading its block with threads (the work waits on
  the network), into the download cache under the output folder;
- decode: CPU tasks, decoding and preprocessing as the single-process build does;
- embed: an actor pool holding the model, one GPU per actor where the cluster
  has GPUs, half the CPUs otherwise.

Ray Data fuses fetch and decode into one task per block, so the bytes of a
photo stay in that task.  Results stream back to the driver, which checkpoints
every block as it arrives: a build stopped by a failure Ray could not retry
continues where it stopped when run again, with or without Ray.  A photo that
Ray delivers twice (a task retried after a worker died) is taken once.

This module imports Ray; python_embed.build imports it only for --ray.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import ray
import ray.data

from bildsuche.errors import BildsucheError
from python_embed.decode import DECODE_ERRORS, decode
from python_embed.embedder import ClipEmbedder, Precision
from python_embed.fetch import FetchConfig, Fetcher, FetchError, ImageCache
from python_embed.pipeline import Progress, Sink, StageTimes
from python_embed.preprocess import ClipPreprocess
from python_embed.types import Failure, PhotoSource

Batch = dict[str, np.ndarray]
# Columns the embed actors return to the driver (the pixels stay behind).
RESULT_COLUMNS = ("position", "photo_id", "photo_image_url", "stage", "reason", "downloads", "fetch_s", "decode_s")


class RayUnavailableError(BildsucheError):
    """The Ray cluster named by --ray cannot be reached or started."""


class RayPipelineError(BildsucheError):
    """The Ray pipeline stopped with an error Ray could not retry away."""


@dataclass(frozen=True)
class ActorPlan:
    """How the embed actors are placed."""

    num_cpus: float
    num_gpus: float
    max_actors: int


def actor_plan(resources: dict[str, float]) -> ActorPlan:
    """One GPU per actor, as many actors as GPUs; without GPUs, actors of up to 4 CPUs on half
    the cluster's CPUs, so that fetch and decode keep the other half."""
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return ActorPlan(num_cpus=1, num_gpus=1, max_actors=gpus)
    cpus = max(1, int(resources.get("CPU", 1)))
    per_actor = max(1, min(4, cpus // 2))
    return ActorPlan(num_cpus=per_actor, num_gpus=0, max_actors=max(1, cpus // (2 * per_actor)))


@contextmanager
def connected(address: str) -> Iterator[None]:
    """Ray at ``address`` ("local": a new local instance, "auto": the cluster this machine is part
    of, host:port or ray://host:port); a Ray already initialised in this process is used as it is."""
    if ray.is_initialized():
        yield
        return
    _answers(address)
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise RayUnavailableError(f"cannot connect to Ray at {address!r}: {exc}") from exc
    try:
        yield
    finally:
        ray.shutdown()


def _answers(address: str) -> None:
    """A host:port address must take connections: Ray itself waits for a dead one for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "local", "auto": Ray answers for those at once
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise RayUnavailableError(f"no Ray answers at {address!r}: {exc.strerror or exc}") from exc


def fetch_block(batch: Batch, *, cache_dir: str, config: FetchConfig, threads: int) -> Batch:
    """Download the block's photos (local files are left to decode, as the single-process build does)."""
    fetcher = Fetcher(ImageCache(Path(cache_dir)), config)

    def one(url: str, path: str) -> tuple[bytes, str, str, float]:
        if path:
            return b"", "", "", 0.0
        started = time.perf_counter()
        try:
            data = fetcher.fetch(url).read_bytes()
        except FetchError as exc:
            return b"", "fetch", str(exc), time.perf_counter() - started
        return data, "", "", time.perf_counter() - started

    urls, paths = batch["photo_image_url"].tolist(), batch["path"].tolist()
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(urls)))) as pool:
        fetched = list(pool.map(one, urls, paths))
    downloads = np.zeros(len(urls), np.int64)
    if len(urls):
        downloads[0] = fetcher.downloads  # the block's downloads, counted once
    return {
        **batch,
        "image": np.array([f[0] for f in fetched], dtype=object),
        "stage": np.array([f[1] for f in fetched], dtype=object),
        "reason": np.array([f[2] for f in fetched], dtype=object),
        "fetch_s": np.array([f[3] for f in fetched], np.float64),
        "downloads": downloads,
    }


def decode_block(batch: Batch, *, preprocess: ClipPreprocess) -> Batch:
    """Decode and preprocess every fetched photo; its pixels travel as float32 bytes."""
    pixels, stages, reasons, seconds = [], batch["stage"].tolist(), batch["reason"].tolist(), []
    for i, (path, data) in enumerate(zip(batch["path"].tolist(), batch["image"].tolist(), strict=True)):
        started = time.perf_counter()
        if stages[i]:
            pixels.append(b"")
        else:
            try:
                pixels.append(preprocess(decode(path or io.BytesIO(data), preprocess)).tobytes())
            except DECODE_ERRORS as exc:
                pixels.append(b"")
                stages[i], reasons[i] = "decode", f"{type(exc).__name__}: {exc}"
        seconds.append(time.perf_counter() - started)
    out = {k: v for k, v in batch.items() if k != "image"}
    out.update(
        pixels=np.array(pixels, dtype=object),
        stage=np.array(stages, dtype=object),
        reason=np.array(reasons, dtype=object),
        decode_s=np.array(seconds, np.float64),
    )
    return out


class EmbedActor:
    """One loaded model per actor (CUDA when Ray gave the actor a GPU)."""

    def __init__(self, model: str, precision: Precision) -> None:
        self.embedder = ClipEmbedder(model, precision=precision)
        self.shape = (3, self.embedder.preprocess.crop_h, self.embedder.preprocess.crop_w)

    def __call__(self, batch: Batch) -> Batch:
        ok = batch["stage"] == ""
        vectors = np.full((len(ok), self.embedder.dim), np.nan, np.float32)
        started = time.perf_counter()
        if ok.any():
            pixels = np.stack([np.frombuffer(p, np.float32).reshape(self.shape) for p in batch["pixels"][ok]])
            vectors[ok] = self.embedder.embed_pixels(pixels)
        seconds = time.perf_counter() - started
        out = {k: batch[k] for k in RESULT_COLUMNS}
        out["photo_embed"] = vectors
        out["embed_s"] = np.full(len(ok), seconds / max(1, len(ok)), np.float64)
        return out


def _blocks(todo: list[PhotoSource], rows: int) -> list[pa.Table]:
    table = pa.table(
        {
            "position": pa.array(range(len(todo)), pa.int64()),
            "photo_id": pa.array([p.photo_id for p in todo], pa.string()),
            "photo_image_url": pa.array([p.photo_image_url for p in todo], pa.string()),
            # Workers do not share this process's working directory.
            "path": pa.array([str(Path(p.path).resolve()) if p.path else "" for p in todo], pa.string()),
        }
    )
    return [table.slice(start, rows) for start in range(0, len(todo), rows)]


@dataclass(frozen=True)
class RayJob:
    """What the pipeline's stages need besides the photos."""

    model: str  # what the actors load: a model name or a directory every node can read
    precision: Precision
    preprocess: ClipPreprocess  # the model's, loaded once by the driver for the decode tasks
    cache_dir: Path  # absolute: workers do not share the driver's working directory
    fetch: FetchConfig
    batch_size: int  # photos per block and per model call
    threads: int  # downloads in flight per fetch task


def pipeline(todo: list[PhotoSource], job: RayJob) -> ray.data.Dataset:
    """The photos of ``todo`` (in blocks of a model batch) through fetch, decode and the actor pool."""
    resources = ray.cluster_resources()
    plan = actor_plan(resources)
    # Tasks on any CPU of the cluster.  A task pool sized apart from the actor pool is also what
    # keeps Ray Data from fusing fetch and decode into the actors, which would leave the model
    # idle while its actor downloads (fetch and decode still fuse with each other: one task a block).
    tasks = ray.data.TaskPoolStrategy(size=max(plan.max_actors + 1, int(resources.get("CPU", 1))))
    dataset = ray.data.from_arrow(_blocks(todo, job.batch_size))
    # batch_format="numpy" hands every function the dict form of a batch (Batch), which
    # map_batches's signature, covering every format, does not know.
    fetched = dataset.map_batches(
        cast(Any, fetch_block),
        batch_size=None,
        batch_format="numpy",
        compute=tasks,
        fn_kwargs={"cache_dir": str(job.cache_dir), "config": job.fetch, "threads": job.threads},
    )
    decoded = fetched.map_batches(
        cast(Any, decode_block),
        batch_size=None,
        batch_format="numpy",
        compute=tasks,
        fn_kwargs={"preprocess": job.preprocess},
    )
    return decoded.map_batches(
        EmbedActor,
        fn_constructor_kwargs={"model": job.model, "precision": job.precision},
        batch_size=job.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=plan.max_actors),
        num_cpus=plan.num_cpus,
        num_gpus=plan.num_gpus,
    )


def embed_on_ray(
    todo: list[PhotoSource],
    sink: Sink,
    address: str,
    job: RayJob,
    *,
    progress: Progress | None = None,
    times: StageTimes | None = None,
) -> int:
    """Embed ``todo`` on Ray, handing each block to ``sink`` as it arrives and the failures, in
    source order, at the end; returns the number of downloads."""
    times = times or StageTimes()
    seen: set[str] = set()
    failed: dict[int, Failure] = {}
    downloads = 0
    with connected(address):
        ray.data.DataContext.get_current().enable_progress_bars = False  # the caller shows progress
        if progress:
            progress(0, len(todo))
        try:
            for block in pipeline(todo, job).iter_batches(batch_size=None, batch_format="numpy"):
                downloads += _take(cast(Batch, block), seen, failed, sink, times)
                if progress:
                    progress(len(seen) + len(failed), len(todo))
        except ray.exceptions.RayError as exc:
            raise RayPipelineError(
                f"the Ray pipeline stopped: {_summary(exc)}; the {len(seen):,} photos embedded so far are "
                "checkpointed: run the build again to continue"
            ) from exc
    sink([], np.zeros((0, 0), np.float32), [failed[p] for p in sorted(failed)])
    return downloads


def _take(block: Batch, seen: set[str], failed: dict[int, Failure], sink: Sink, times: StageTimes) -> int:
    """Checkpoint the block's new embeddings, note its failures; returns its downloads."""
    photos, rows = [], []
    for i, (position, photo_id, url, stage, reason) in enumerate(
        zip(
            block["position"].tolist(),
            block["photo_id"].tolist(),
            block["photo_image_url"].tolist(),
            block["stage"].tolist(),
            block["reason"].tolist(),
            strict=True,
        )
    ):
        if photo_id in seen:
            continue  # delivered again: a task retried after its first result came back
        if stage:
            failed[position] = Failure(photo_id, url, stage, reason)
        else:
            failed.pop(position, None)
            seen.add(photo_id)
            photos.append(PhotoSource(photo_id, url, ""))
            rows.append(i)
    times.add("fetch", float(block["fetch_s"].sum()))
    times.add("decode", float(block["decode_s"].sum()))
    times.add("embed", float(block["embed_s"].sum()))
    if photos:
        sink(photos, np.ascontiguousarray(block["photo_embed"][rows], np.float32), [])
    return int(block["downloads"].sum())


def _summary(exc: BaseException) -> str:
    """The last line of a Ray error, which names the exception that ended the task."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
