"""kill -9 at chosen points, then the same command again: the result equals an uninterrupted run.

(tests/python/test_build.py kills a build after three checkpoint shards: the quick battery's embedding point.)

python_embed build is killed while downloading, after checkpoint shards,
while writing its final files and between their renames; seeds_loader while
inserting and between its table swaps; `dbt build` between models.  Each
rerun must give the files and tables of a run that was never interrupted:
the same photo ids in the same order, the same row counts, no duplicates.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bildsuche.config import project_dir
from bildsuche.dbt import run_dbt
from bildsuche.store import client_for
from datasets_helpers import write_synthetic
from imageserver import ImageServer, image_server
from marts_reference import reference
from python_embed.build import BuildOptions, build
from python_embed.embedder import ClipEmbedder
from python_embed.writer import stale_parts
from reliability.stores import RAW_FINGERPRINT_SQL
from seeds_loader import load

PHOTOS = [f"k{i:03d}" for i in range(40)]
TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with image_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, server: ImageServer) -> Path:
    """An Unsplash-shaped zip: photos on the loopback CDN, conversions, one photo that fails."""
    path = tmp_path_factory.mktemp("source") / "lite.zip"
    photos = "photo_id\tphoto_image_url\n" + "".join(f"{pid}\t{server.url('ok', pid)}\n" for pid in PHOTOS)
    photos += f"gone\t{server.url('404', 'gone')}\n"
    conversions = "photo_id\tkeyword\n" + "".join(f"{pid}\tkw{i % 3}\n" for i, pid in enumerate(PHOTOS * 2))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("lite/photos.tsv000", photos)
        zf.writestr("lite/conversions.tsv000", conversions)
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}


def build_command(source: Path, out: Path, model: Path) -> list[str]:
    return [
        "python_embed", "build", str(source), "--out", str(out), "--model", str(model),
        "--batch-size", "4", "--concurrency", "2", "--precision", "fp32", "--cache", str(out.parent / "cache"),
    ]  # fmt: skip


def run(command: list[str], kill_at: tuple[str, int] | None = None) -> subprocess.CompletedProcess[str]:
    prefix = [sys.executable, "-m", "reliability.killpoints", kill_at[0], str(kill_at[1])] if kill_at else [
        sys.executable, "-m"
    ]  # fmt: skip
    return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=300, env=env())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, source: Path, demo_model_dir: Path) -> Path:
    """The build of build_command, run in this process without interruption."""
    out = tmp_path_factory.mktemp("reference") / "out"
    options = BuildOptions(batch_size=4, workers=2, cache_dir=out.parent / "cache")
    build(str(source), out, lambda: ClipEmbedder(str(demo_model_dir), precision="fp32"), options)
    return out


def assert_same_build(out: Path, reference_out: Path) -> None:
    got, want = pq.read_table(out / "photos.parquet"), pq.read_table(reference_out / "photos.parquet")
    ids = got.column("photo_id").to_pylist()
    assert ids == want.column("photo_id").to_pylist() and len(set(ids)) == len(ids)
    np.testing.assert_allclose(
        np.array(got.column("photo_embed").to_pylist()), np.array(want.column("photo_embed").to_pylist()), atol=1e-6
    )
    for name in ("conversions.parquet", "failures.parquet"):
        assert pq.read_table(out / name).equals(pq.read_table(reference_out / name)), name
    assert not (out / ".bildsuche-build").exists()
    assert not stale_parts(out)


def _killed_then_rerun(tmp_path: Path, source: Path, model: Path, reference_out: Path, point: str, times: int) -> None:
    out = tmp_path / "out"
    killed = run(build_command(source, out, model), kill_at=(point, times))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point != "final-rename":
        assert not (out / "photos.parquet").exists()  # nothing final before the end
    rerun = run(build_command(source, out, model))
    assert rerun.returncode == 0, rerun.stderr
    if point in ("shard", "final-write", "final-rename"):
        assert "from an earlier run" in rerun.stdout and " 0 from an earlier run" not in rerun.stdout
    assert_same_build(out, reference_out)


@pytest.mark.full
@pytest.mark.parametrize(
    "point,times",
    [("download", 1), ("download", 30), ("shard", 1), ("shard", 5), ("final-write", 1), ("final-rename", 1)],
)
def test_killed_build_reruns_to_the_same_files_full(
    tmp_path: Path, source: Path, demo_model_dir: Path, uninterrupted: Path, point: str, times: int
) -> None:
    _killed_then_rerun(tmp_path, source, demo_model_dir, uninterrupted, point, times)


def test_killed_while_writing_the_final_files_keeps_the_earlier_ones(
    tmp_path: Path, source: Path, demo_model_dir: Path, uninterrupted: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = {}
    for name in ("photos.parquet", "conversions.parquet", "failures.parquet"):
        earlier[name] = (uninterrupted / name).read_bytes()[::-1]  # different content, same names
        (out / name).write_bytes(earlier[name])
    killed = run(build_command(source, out, demo_model_dir), kill_at=("final-write", 2))
    assert killed.returncode == -signal.SIGKILL
    assert {name: (out / name).read_bytes() for name in earlier} == earlier
    assert stale_parts(out)  # what a kill leaves: the next build removes it
    assert run(build_command(source, out, demo_model_dir)).returncode == 0
    assert_same_build(out, uninterrupted)


# --- seeds_loader ---------------------------------------------------------------------------------------------


def loader_command(directory: Path) -> list[str]:
    return ["seeds_loader", str(directory)]


def fingerprint(store: Path) -> str:
    with client_for("embedded", path=store) as client:
        return str(client.query(RAW_FINGERPRINT_SQL).result_rows)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Data sets A and B, and the fingerprint of a store that loaded B alone."""
    root = tmp_path_factory.mktemp("loads")
    first = write_synthetic(root / "a", n=150, seed=1).directory
    second = write_synthetic(root / "b", n=300, seed=2).directory
    with client_for("embedded", path=root / "reference") as client:
        load(client, second)
    return first, second, fingerprint(root / "reference")


PHOTOS_FINGERPRINT_SQL = "SELECT (count(), sum(cityHash64(id, photo_id, photo_image_url, photo_embed))) FROM raw.photos"


def photos_fingerprint(store: Path) -> str | None:
    with client_for("embedded", path=store) as client:
        if not client.command("EXISTS TABLE raw.photos"):
            return None
        return str(client.query(PHOTOS_FINGERPRINT_SQL).result_rows)


@pytest.mark.parametrize("point,times", [("insert", 3), ("swap", 1), ("mid-swap", 1)])
def test_killed_load_reruns_to_the_same_tables(
    tmp_path: Path, datasets: tuple[Path, Path, str], point: str, times: int
) -> None:
    first, second, loaded_second = datasets
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, second)
    second_photos = photos_fingerprint(store)
    shutil.rmtree(store)
    with client_for("embedded", path=store) as client:
        load(client, first)
    before = fingerprint(store)
    first_photos = photos_fingerprint(store)
    killed = subprocess.run(
        [sys.executable, "-m", "reliability.killpoints", point, str(times), *loader_command(second)],
        capture_output=True, text=True, timeout=300, env={**env(), "BILDSUCHE_DB_PATH": str(store)},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point == "insert":
        assert fingerprint(store) == before  # killed before any swap: the live tables are the old ones
    # Killed in the middle of swapping raw.photos: it holds the old photos or the new ones, never none.
    assert photos_fingerprint(store) in (first_photos, second_photos)
    rerun = subprocess.run(
        [sys.executable, "-m", *loader_command(second)],
        capture_output=True, text=True, timeout=300, env={**env(), "BILDSUCHE_DB_PATH": str(store)},
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert fingerprint(store) == loaded_second
    with client_for("embedded", path=store) as client:
        assert client.command("SELECT count() FROM raw.photos") == client.command(
            "SELECT uniqExact(photo_id) FROM raw.photos"
        )
        assert client.command("SELECT count() FROM system.tables WHERE endsWith(name, '__loading')") == 0


# --- dbt build ------------------------------------------------------------------------------------------------


def _killed_dbt_build(tmp_path: Path, after_line: str) -> None:
    data = write_synthetic(tmp_path / "data", n=80)
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
    project = project_dir()
    dbt = subprocess.Popen(
        [str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(project), "--profiles-dir",
         str(project), "--vars", '{"target_photo_id": "p0005", "top_k": 6}'],
        stdout=subprocess.PIPE, text=True, cwd=project, env={**os.environ, "BILDSUCHE_DB_PATH": str(store)},
    )  # fmt: skip
    assert dbt.stdout is not None
    seen = []
    for line in dbt.stdout:
        seen.append(line)
        if after_line in line:
            dbt.send_signal(signal.SIGKILL)
            break
    dbt.wait(timeout=60)
    assert dbt.returncode == -signal.SIGKILL, "".join(seen[-20:])
    run_dbt(["build"], db_path=store, dbt_vars={"target_photo_id": "p0005", "top_k": 6}, quiet=True)
    with client_for("embedded", path=store) as client:
        rows = client.query("SELECT photo_id, dist FROM analytics.top_k_neighbours ORDER BY rank").result_rows
        tables = [r[0] for r in client.query("SELECT name FROM system.tables WHERE database = 'analytics'").result_rows]
        downloads = dict(
            client.query("SELECT photo_id, downloads FROM analytics.conversions_per_candidate").result_rows
        )
    expected = reference(data, "p0005", 6)
    assert {pid for pid, _ in rows} == {pid for pid, _ in expected.neighbours} and len(rows) == 6
    assert dict(rows) == pytest.approx(dict(expected.neighbours), abs=2e-6)
    assert downloads == expected.downloads
    assert not [t for t in tables if "__dbt" in t], tables  # no backup or temporary relation left behind


def test_killed_dbt_build_reruns_to_consistent_marts(tmp_path: Path) -> None:
    _killed_dbt_build(tmp_path, "OK created sql incremental model `analytics`.`photos` ")


@pytest.mark.full
@pytest.mark.parametrize(
    "after_line",
    ["OK created sql view model `analytics`.`stg_photos`", "START sql table model `analytics`.`top_k_neighbours`"],
)
def test_killed_dbt_build_reruns_to_consistent_marts_full(tmp_path: Path, after_line: str) -> None:
    _killed_dbt_build(tmp_path, after_line)
