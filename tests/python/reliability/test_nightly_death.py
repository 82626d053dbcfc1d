"""kill -9 at points of a nightly run (a changed set loaded, an incremental `dbt build`), then the same
command again: the result equals an uninterrupted night, with no photo lost or doubled.

Three nights: a full build, an increment, and the night killed (photos removed, re-embedded, added).

The loader is killed on the way to loading a changed set as its changes (attaching the live parts,
inserting, masking, committing, swapping); `dbt build` at the statements of the incremental photos
model (removing photos, staging new rows, deleting replaced ones, inserting, merging a generation).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bildsuche.config import project_dir
from bildsuche.dbt import environment, run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from nightly_helpers import first_night, marts, next_night
from reliability.stores import RAW_FINGERPRINT_SQL
from seeds_loader import load

pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).resolve().parents[1]
VARS = '{"target_photo_id": "p0005", "top_k": 6}'


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
        run_dbt(["build", *extra], db_path=store, dbt_vars={"target_photo_id": "p0005", "top_k": 6}, quiet=True)


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
