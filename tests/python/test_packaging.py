"""One distribution: the wheel `pip install .` builds carries the application, both dbt
plugins and the dbt project, and an installed copy runs the demo away from any checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the build uses this environment's setuptools instead of downloading one.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return next(out.glob("bildsuche-*.whl"))


def test_the_wheel_holds_the_plugins_and_the_dbt_project(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "bildsuche/cli/__init__.py",
        "python_embed/build.py",
        "seeds_loader/loader.py",
        "dbt/adapters/chdb/__init__.py",
        "dbt/adapters/myscale/__init__.py",
        "dbt/include/chdb/dbt_project.yml",
        "dbt/include/chdb/macros/nearest_neighbours.sql",
        "bildsuche/project/dbt_project.yml",
        "bildsuche/project/profiles.yml",
        "bildsuche/project/models/marts/top_k_neighbours.sql",
        "bildsuche/project/macros/vector_index.sql",
        "bildsuche/project/seeds/saved_searches.csv",
        "bildsuche/project/tests/dbt/generic/vector_index_built.sql",
    ):
        assert required in names, required
    # No package of the distribution shadows dbt's own: `dbt/__init__.py` stays dbt-core's.
    assert not {n for n in names if n in ("dbt/__init__.py", "dbt/adapters/__init__.py", "dbt/include/__init__.py")}
    requires = [line for line in zipfile.ZipFile(wheel).read(_metadata(names)).decode().splitlines()
                if line.startswith("Requires-Dist:")]  # fmt: skip
    assert requires and not [r for r in requires if "bildsuche" in r]


def _metadata(names: set[str]) -> str:
    return next(n for n in names if n.endswith(".dist-info/METADATA"))


def test_an_installed_copy_runs_the_demo_outside_any_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    work = tmp_path / "somewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILDSUCHE_", "DBT_TARGET", "DBT_LOG"))}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run(
        [sys.executable, "-c", "from bildsuche import config; print(config.project_dir())"],
        cwd=work, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert where.stdout.strip() == str(site / "bildsuche" / "project")
    done = subprocess.run(
        [sys.executable, "-m", "bildsuche", "demo", "--photos", "16", "--top-k", "3", "--quiet"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== analytics.top_k_neighbours (3 rows)" in done.stdout
    # The store and dbt's artifacts land in the data folder of the working directory,
    # none of them in the installed package.
    assert (work / "data" / "demo.chdb").is_dir()
    assert (work / "data" / "dbt" / "target" / "manifest.json").is_file()
    assert not (site / "bildsuche" / "project" / "target").exists()
    assert not (site / "bildsuche" / "project" / "logs").exists()


def test_the_tests_run_the_checkouts_plugin() -> None:
    # An install that copied the plugin would leave a test run on the old plugin after a change
    # to adapter/: scripts/install installs the checkout editable, plugins included.
    import dbt.adapters.chdb
    import dbt.include.chdb

    assert Path(dbt.adapters.chdb.__file__).resolve().is_relative_to(ROOT / "adapter")
    assert Path(dbt.include.chdb.PACKAGE_PATH).resolve().is_relative_to(ROOT / "adapter")
