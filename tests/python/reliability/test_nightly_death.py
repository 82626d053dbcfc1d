"""kill -9 at points of a nightly run (a build into last night's folder, a changed set loaded, an
incremental `dbt build`), then the same command again: the result equals an uninterrupted night,
with no photo lost or doubled.

Three nights: a full build, an increment, and the night killed (photos removed, re-embedded, added).

The loader is killed on the way to loading a changed set as its changes (attaching the live parts,
inserting, masking, committing, swapping); `dbt build` at the statements of the incremental photos
model (removing photos, staging new rows, deleting replaced ones, inserting, merging a generation).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bildsuche.config import project_dir
from bildsuche.dbt import environment, run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from imageserver import image_server
from nightly_helpers import first_night, marts, next_night
from python_embed.build import BuildOptions, build
from python_embed.embedder import ClipEmbedder
from python_embed.writer import stale_parts
from reliability.stores import RAW_FINGERPRINT_SQL
from seeds_loader import load

pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).resolve().parents[1]
# Merged every night: night 3 merges the open generation (the optimize kill points).
VARS = '{"target_photo_id": "p0005", "top_k": 6, "photos_generation_parts": 1}'


@dataclass
class Nights:
    root: Path
    earlier: list[Path]  # night 1 (a full build) and night 2 (the first increment)
    last: Path  # night 3, the one killed
    loaded: str  # raw fingerprint after loading the last night
    built: dict[str, list[tuple[object, ...]]]  # the marts after building every night in turn


def env(store: Path) -> dict[str, str]:
    pythonpath = os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": pythonpath, "BILDSUCHE_DB_PATH": str(store)}


def killed(store: Path, point: str, times: int, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reliability.killpoints", point, str(times), *command],
        capture_output=True, text=True, timeout=600, env=env(store), cwd=project_dir(),
    )  # fmt: skip


def dbt_build(store: Path, root: Path, *extra: str) -> None:
    with environment({"DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs")}):
        run_dbt(["build", *extra], db_path=store, dbt_vars=json.loads(VARS), quiet=True)


def fingerprint(store: Path) -> str:
    with client_for("embedded", path=store) as client:
        return str(client.query(RAW_FINGERPRINT_SQL).result_rows)


def assert_whole(store: Path) -> None:
    """No photo doubled, no table of a load or a dbt run left behind."""
    with client_for("embedded", path=store) as client:
        for table in ("raw.photos", "analytics.photos"):
            if client.command(f"EXISTS TABLE {table}"):
                assert client.command(f"SELECT count() = uniqExact(photo_id) FROM {table}") == 1, table
        left = client.query(
            "SELECT database, name FROM system.tables WHERE database IN ('raw', 'analytics') "
            "AND (name LIKE '%\\_\\_loading%' OR name LIKE '%\\_\\_dbt%' OR name = 'load__commit')"
        ).result_rows
        assert left == []


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    root = tmp_path_factory.mktemp("nightly-death")
    d1 = first_night(root / "night1", n=120, seed=4)
    d2 = next_night(d1, root / "night2", remove=[], change=[], add=10, seed=5)
    # Night 3 puts a second part into the open generation, which the run then merges.
    d3 = next_night(d2, root / "night3", remove=["p0003", "p0040"], change=["p0010", "n0125"], add=25, seed=6)
    reference = root / "reference"
    for data in (d1, d2, d3):
        with client_for("embedded", path=reference) as client:
            load(client, data.directory)
        dbt_build(reference, root)
    yield Nights(root, [d1.directory, d2.directory], d3.directory, fingerprint(reference), marts(reference))


def earlier_nights(store: Path, nights: Nights, build: bool) -> None:
    for directory in nights.earlier:
        with client_for("embedded", path=store) as client:
            load(client, directory)
        if build:
            dbt_build(store, store.parent)


# --- seeds_loader, loading night 2 as its changes ----------------------------------------------------------

LOADER_POINTS = [
    ("sql-after:ATTACH PARTITION", 1, False),  # the staging table holds the live parts
    ("insert", 1, False),  # first batch of changed rows inserted
    ("sql-after:DELETE FROM .*photos__loading", 1, False),  # replaced and removed rows masked
    ("sql-after:CREATE TABLE .*load__commit", 1, True),  # committed, nothing swapped yet
    ("swap", 1, True),  # raw.photos swapped in, raw.conversions not
    ("mid-swap", 1, True),  # raw.photos exchanged, its old copy not dropped
]


@pytest.mark.parametrize("point,times,committed", LOADER_POINTS)
def test_killed_changed_load_reruns_to_the_same_tables(
    tmp_path: Path, nights: Nights, point: str, times: int, committed: bool
) -> None:
    store = tmp_path / "store"
    earlier_nights(store, nights, build=False)
    before = fingerprint(store)
    result = killed(store, point, times, "seeds_loader", str(nights.last))
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    if not committed:
        assert fingerprint(store) == before  # killed before the commit: the live tables are night 1's
    else:
        with pytest.raises(DbtRunError, match="a load was interrupted while it swapped them in"):
            dbt_build(store, tmp_path, "--select", "stg_photos")
    rerun = subprocess.run(
        [sys.executable, "-m", "seeds_loader", str(nights.last)],
        capture_output=True, text=True, timeout=600, env=env(store),
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert ("finished the swaps of an earlier load" in rerun.stdout) == committed
    assert fingerprint(store) == nights.loaded
    assert_whole(store)


# --- dbt build, night 2 on a store built from night 1 ------------------------------------------------------

DBT_POINTS = [
    ("sql-after:delete from `analytics`.`photos` where photo_id not in", 1),  # removed photos deleted
    ("sql-after:insert into `analytics`.`photos__dbt_new_data_", 1),  # new rows staged
    ("sql-after:delete from `analytics`.`photos`\\s+where \\(photo_id\\) in", 1),  # replaced rows deleted
    ("sql-after:insert into `analytics`.`photos`\\s", 1),  # new rows in, their part indexed
    ("sql-before:optimize table `analytics`.`photos`", 1),  # the open generation about to be merged
    ("sql-after:optimize table `analytics`.`photos`", 1),  # merged, the run not finished
]


def _killed_dbt(tmp_path: Path, nights: Nights, point: str, times: int) -> None:
    store = tmp_path / "store"
    earlier_nights(store, nights, build=True)
    with client_for("embedded", path=store) as client:
        load(client, nights.last)
    result = killed(
        store, point, times, "dbt.cli.main", "build", "--vars", VARS,
        "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, (result.stdout + result.stderr)[-3000:]
    dbt_build(store, tmp_path)
    assert marts(store) == nights.built
    assert_whole(store)


@pytest.mark.parametrize("point,times", [DBT_POINTS[2], DBT_POINTS[3]])
def test_killed_incremental_dbt_build_reruns_to_the_same_marts(
    tmp_path: Path, nights: Nights, point: str, times: int
) -> None:
    _killed_dbt(tmp_path, nights, point, times)


@pytest.mark.full
@pytest.mark.parametrize("point,times", [DBT_POINTS[0], DBT_POINTS[1], DBT_POINTS[4], DBT_POINTS[5]])
def test_killed_incremental_dbt_build_reruns_to_the_same_marts_full(
    tmp_path: Path, nights: Nights, point: str, times: int
) -> None:
    _killed_dbt(tmp_path, nights, point, times)


# --- python_embed build into last night's folder --------------------------------------------------------------


def _source(path: Path, urls: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "lite/photos.tsv000", "photo_id\tphoto_image_url\n" + "".join(f"{p}\t{u}\n" for p, u in urls.items())
        )
        zf.writestr("lite/conversions.tsv000", "photo_id\tkeyword\n" + "".join(f"{p}\tsky\n" for p in urls))
    return path


@pytest.mark.parametrize("point,times", [("shard", 2), ("download", 3)])
def test_killed_nightly_build_reruns_to_the_same_files(
    tmp_path: Path, demo_model_dir: Path, point: str, times: int
) -> None:
    with image_server() as server:
        first = {f"b{i:02d}": server.url("okslow", f"b{i:02d}") for i in range(16)}
        second = {p: u for p, u in first.items() if p not in ("b01", "b02")}
        second["b05"] = server.url("okslow", "b05-new")
        second |= {f"c{i:02d}": server.url("okslow", f"c{i:02d}") for i in range(12)}
        night1, night2 = _source(tmp_path / "one.zip", first), _source(tmp_path / "two.zip", second)
        options = BuildOptions(batch_size=4, workers=2)
        out = tmp_path / "out"
        build(str(night1), out, lambda: ClipEmbedder(str(demo_model_dir), precision="fp32"), options)
        shutil.rmtree(out / ".bildsuche-cache")  # nightly folders need no cache for the photos they keep
        reference = tmp_path / "reference"
        shutil.copytree(out, reference)
        build(str(night2), reference, lambda: ClipEmbedder(str(demo_model_dir), precision="fp32"), options)
        command = [
            "python_embed", "build", str(night2), "--out", str(out), "--model", str(demo_model_dir),
            "--batch-size", "4", "--concurrency", "2", "--precision", "fp32",
        ]  # fmt: skip
        result = killed(tmp_path, point, times, *command)
        assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
        assert pq.read_table(out / "photos.parquet").column("photo_id").to_pylist() == list(first)  # night 1's
        rerun = subprocess.run(
            [sys.executable, "-m", *command], capture_output=True, text=True, timeout=600, env=env(tmp_path)
        )
        assert rerun.returncode == 0, rerun.stderr
        assert "13 reused" in rerun.stdout, rerun.stdout  # the 14 photos kept, less the one whose URL changed
    got, want = pq.read_table(out / "photos.parquet"), pq.read_table(reference / "photos.parquet")
    assert got.column("photo_id").to_pylist() == want.column("photo_id").to_pylist() == list(second)
    np.testing.assert_allclose(
        np.array(got.column("photo_embed").to_pylist()), np.array(want.column("photo_embed").to_pylist()), atol=1e-6
    )
    for name in ("conversions.parquet", "failures.parquet"):
        assert pq.read_table(out / name).equals(pq.read_table(reference / name)), name
    assert not (out / ".bildsuche-build").exists() and not stale_parts(out)
