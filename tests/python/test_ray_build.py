"""python_embed build --ray: the Ray Data pipeline, on a local Ray of 2 CPUs, writes the data set
the single-process build writes; reuse, resume, a killed worker and a killed build."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bildsuche.dataset import CACHE_DIR
from bildsuche.errors import BildsucheError
from build_helpers import FAST_FETCH, FAULTS, assert_same_data_set, interrupt_after, night
from imageserver import ImageServer, closed_port_url, image_server
from python_embed.build import BuildOptions, BuildReport, RayOptions, build
from python_embed.checkpoint import Checkpoint
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import FetchConfig

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install '.[ray]'); scripts/install installs it")

from python_embed.ray_pipeline import ActorPlan, RayPipelineError, actor_plan  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "bildsuche-demo-clip"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One Ray for the module, as a 2-worker machine: builds given no address use it."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


@pytest.fixture()
def server() -> Iterator[ImageServer]:
    with image_server() as srv:
        srv.slow_seconds = 1.5
        yield srv


def no_model() -> ClipEmbedder:
    raise AssertionError("the driver loaded the model: on Ray only the actors load it")


def on_ray(model_dir: Path, **options: object) -> BuildOptions:
    return BuildOptions(model=MODEL, ray=RayOptions("local", str(model_dir), "fp32"), **options)  # type: ignore[arg-type]


def single(model_dir: Path, source: Path, out: Path, **options: object) -> BuildReport:
    return build(
        str(source),
        out,
        lambda: ClipEmbedder(str(model_dir), precision="fp32"),
        BuildOptions(**options),  # type: ignore[arg-type]
    )


def failure_kinds(out: Path) -> list[tuple[str, str, str, str]]:
    """failures.parquet as (photo_id, url, stage, reason kind): the message after the kind may name the
    picture differently (a cache path in one process, the downloaded bytes on Ray)."""
    rows = pq.read_table(out / "failures.parquet").to_pylist()
    return [(r["photo_id"], r["url"], r["stage"], r["reason"].split(":")[0]) for r in rows]


def test_actor_plan_gives_each_gpu_an_actor_and_cpu_actors_half_the_cpus() -> None:
    assert actor_plan({"CPU": 2.0}) == ActorPlan(num_cpus=1, num_gpus=0, max_actors=1)
    assert actor_plan({"CPU": 32.0}) == ActorPlan(num_cpus=4, num_gpus=0, max_actors=4)
    assert actor_plan({"CPU": 64.0, "GPU": 8.0}) == ActorPlan(num_cpus=1, num_gpus=1, max_actors=8)


def interleaved(server: ImageServer) -> dict[str, str]:
    """Every fault of the CDN between photos that embed, so that blocks mix both (photo_id -> URL)."""
    photos: dict[str, str] = {}
    for i, (pid, (kind, _, _)) in enumerate(FAULTS.items()):
        photos[pid] = server.url(kind, pid)
        photos[f"good{i}"] = server.url("ok", f"good{i}")
    photos["flaky1"] = server.url("flaky", "flaky1")  # 503 twice, then fine
    photos["badurl"] = "htp:/not a url"
    photos["busy1"] = server.url("busy", "busy1")  # 429 with Retry-After, then fine
    return photos | {"good9": server.url("ok", "good9")}


def test_ray_build_writes_the_single_process_data_set(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path, local_ray: None
) -> None:
    photos = interleaved(server)
    source = night(tmp_path / "lite.zip", photos)
    reference = single(demo_model_dir, source, tmp_path / "reference", fetch=FAST_FETCH, batch_size=4, workers=4)
    before = dict(server.hits)
    out = tmp_path / "ray"
    report = build(str(source), out, no_model, on_ray(demo_model_dir, fetch=FAST_FETCH, batch_size=4, workers=4))

    assert_same_data_set(out, tmp_path / "reference", atol=1e-5, failures=False)
    assert failure_kinds(out) == failure_kinds(tmp_path / "reference")
    assert [pid for pid, *_ in failure_kinds(out)] == [p for p in photos if p in {*FAULTS, "badurl"}]
    assert report.failures == reference.failures and sum(report.failures.values()) == 7
    # trunc is downloaded, then fails to decode
    assert (report.embedded, report.downloads) == (reference.embedded, reference.downloads) == (9, 10)
    assert report.times.embed > 0 and report.times.decode > 0
    for pid in pq.read_table(out / "photos.parquet").column("photo_id").to_pylist():
        path = photos[pid].removeprefix(server.base)
        assert server.hits[path] - before[path] == 1  # flaky ones recovered for the reference already
    assert not (out / ".bildsuche-build").exists()


def test_ray_build_reuses_an_earlier_set_and_resumes_an_unfinished_one(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch = FetchConfig(connect_timeout=2.0, read_timeout=1.0, retries=1, backoff=0.01)
    first = {f"p{i:02d}": server.url("ok", f"p{i:02d}") for i in range(10)} | {"fl": server.url("flaky", "fl")}
    out = tmp_path / "out"
    one = build(
        str(night(tmp_path / "one.zip", first)), out, no_model, on_ray(demo_model_dir, batch_size=4, fetch=fetch)
    )
    assert (one.embedded, one.reused, sum(one.failures.values())) == (10, 0, 1)  # fl: 503 twice, retries=1

    second = {pid: url for pid, url in first.items() if pid not in ("p01", "p02")}
    second["p03"] = server.url("ok", "p03-recropped")
    second |= {"n1": server.url("ok", "n1"), "n2": server.url("ok", "n2")}
    shutil.rmtree(out / CACHE_DIR)  # reused embeddings need no download
    hits = dict(server.hits)
    two = build(
        str(night(tmp_path / "two.zip", second)), out, no_model, on_ray(demo_model_dir, batch_size=4, fetch=fetch)
    )
    assert (two.reused, two.embedded, two.removed, two.retried, two.downloads) == (7, 4, 2, 1, 4)
    for pid in ("p00", "p04", "p09"):
        assert server.hits[f"/ok/{pid}"] == hits[f"/ok/{pid}"]
    single(demo_model_dir, tmp_path / "two.zip", tmp_path / "fresh", batch_size=4, fetch=fetch)
    assert_same_data_set(out, tmp_path / "fresh", atol=1e-5)

    # An unfinished single-process build (stopped after two batches of 4) is finished on Ray.
    source = tmp_path / "three.zip"
    night(source, {f"r{i:02d}": server.url("ok", f"r{i:02d}") for i in range(14)})
    resumed_out = tmp_path / "resumed"
    interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        single(demo_model_dir, source, resumed_out, batch_size=4, workers=2, fetch=fetch, model=MODEL)
    done = Checkpoint(resumed_out, MODEL, str(source)).done_ids()
    assert len(done) == 8
    hits = dict(server.hits)
    cached = len([p for p in (resumed_out / CACHE_DIR).rglob("*") if p.is_file()])  # fetched ahead of the model
    finished = build(str(source), resumed_out, no_model, on_ray(demo_model_dir, batch_size=4, fetch=fetch))
    assert (finished.resumed, finished.embedded, finished.downloads) == (8, 6, 14 - cached)
    assert all(server.hits[f"/ok/{pid}"] == hits[f"/ok/{pid}"] for pid in done)
    single(demo_model_dir, source, tmp_path / "three-fresh", batch_size=4, fetch=fetch)
    assert_same_data_set(resumed_out, tmp_path / "three-fresh", atol=1e-5)


def slow_zip(path: Path, server: ImageServer, count: int) -> list[str]:
    ids = [f"k{i:03d}" for i in range(count)]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "lite/photos.tsv000",
            "photo_id\tphoto_image_url\n" + "".join(f"{p}\t{server.url('okslow', p)}\n" for p in ids),
        )
    return ids


def descendants(root: int) -> list[int]:
    """Processes started, directly or not, by process ``root`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def embed_actors() -> list[int]:
    """This test process's Ray workers holding the model (Ray names a worker after its actor class)."""
    pids = []
    for pid in descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "EmbedActor" in title:
            pids.append(pid)
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's worker processes in /proc")
def test_a_ray_worker_killed_midway_loses_and_doubles_nothing(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path, local_ray: None
) -> None:
    source = tmp_path / "lite.zip"
    ids = slow_zip(source, server, 48)
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_the_model_worker() -> None:
        state = out / ".bildsuche-build"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(state.glob("shard-*.parquet"))) < 2:
            time.sleep(0.02)
        for pid in embed_actors():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_the_model_worker, daemon=True)
    killer.start()
    options = on_ray(demo_model_dir, batch_size=4, workers=2)
    try:
        report = build(str(source), out, no_model, options)
    except BildsucheError as exc:  # Ray could not retry: a clear error, and the rerun finishes
        assert isinstance(exc, RayPipelineError) and "run the build again" in str(exc)
        report = build(str(source), out, no_model, options)
    killer.join(timeout=5)
    assert killed, "no model worker was found to kill"
    assert len(Checkpoint(out, MODEL, str(source)).done_ids()) == 0  # cleared: the build finished
    assert report.embedded + report.resumed == len(ids) and not report.failures

    photos = pq.read_table(out / "photos.parquet")
    assert photos.column("photo_id").to_pylist() == ids
    for pid in ids:
        assert server.hits[f"/okslow/{pid}"] == 1  # downloaded once, whatever was retried
    single(demo_model_dir, source, tmp_path / "reference", batch_size=4)
    assert_same_data_set(out, tmp_path / "reference", atol=1e-5)


def test_a_killed_ray_build_reruns_to_the_same_data_set(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path
) -> None:
    """The command line with --ray (a Ray of its own), killed with its Ray midway, then run again."""
    source = tmp_path / "lite.zip"
    ids = slow_zip(source, server, 64)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "python_embed", "build", str(source), "--out", str(out), "--model", str(demo_model_dir),
        "--batch-size", "4", "--concurrency", "2", "--precision", "fp32", "--ray",
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out / ".bildsuche-build"
    deadline = time.monotonic() + 180
    while len(list(state.glob("shard-*.parquet"))) < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGKILL)  # the build and the Ray it started, as when a machine dies
    child.wait(timeout=30)
    assert not (out / "photos.parquet").exists(), "the build finished before it could be killed"
    done = Checkpoint(out, MODEL, str(source)).done_ids()
    assert 12 <= len(done) < len(ids)
    before = dict(server.hits)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(done)} from an earlier run" in rerun.stdout
    for pid in done:
        assert server.hits[f"/okslow/{pid}"] == before[f"/okslow/{pid}"] == 1
    assert pq.read_table(out / "photos.parquet").column("photo_id").to_pylist() == ids
    assert pq.read_table(out / "failures.parquet").num_rows == 0
    single(demo_model_dir, source, tmp_path / "reference", batch_size=4)
    assert_same_data_set(out, tmp_path / "reference", atol=1e-5)


def test_a_model_the_workers_cannot_load_is_a_clear_error(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path, local_ray: None
) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(demo_model_dir, broken)
    (broken / "model.safetensors").unlink()  # the processor loads, the weights do not
    source = night(tmp_path / "one.zip", {f"b{i}": server.url("ok", f"b{i}") for i in range(4)})
    options = BuildOptions(model=MODEL, ray=RayOptions("local", str(broken), "fp32"), batch_size=4)
    with pytest.raises(RayPipelineError, match=r"the Ray pipeline stopped: .*cannot load CLIP model"):
        build(str(source), tmp_path / "out", no_model, options)
    assert not (tmp_path / "out" / "photos.parquet").exists()


def test_an_address_where_no_ray_answers_is_a_clear_error(tmp_path: Path) -> None:
    address = closed_port_url("").removeprefix("http://")
    command = [sys.executable, "-m", "python_embed", "build", "sample:4", "--model", "demo"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out"), "--ray", address], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"no Ray answers at '{address}'" in done.stderr and "Traceback" not in done.stderr
