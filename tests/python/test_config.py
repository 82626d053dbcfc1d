"""dbt and the Python tools open one store, whatever the environment: every combination of
BILDSUCHE_DB_PATH and BILDSUCHE_DATA_DIR (unset, empty, relative, absolute, `~`), run from
the project or from elsewhere; and the dbt project is found, or its absence said plainly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bildsuche import config
from bildsuche.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]

# In a child process: for each case, the store the Python tools open (config.db_path) and the
# store directories `dbt debug` (which opens its connection) made in the sandbox.
PROBE = r"""
import json, os, shutil, sys
from pathlib import Path
from dbt.cli.main import dbtRunner
from bildsuche import config
project, sandbox, cases = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
results = []
for case in cases:
    for name in ("BILDSUCHE_DB_PATH", "BILDSUCHE_DATA_DIR"):
        os.environ.pop(name, None)
    os.environ.update(case["env"])
    os.chdir(sandbox / case["cwd"])
    expected = os.path.realpath(config.db_path())
    done = dbtRunner().invoke(["debug", "--project-dir", str(project), "--profiles-dir", str(project)])
    stores = sorted(os.path.realpath(p.parent) for p in sandbox.rglob("metadata") if p.is_dir())
    for store in stores:
        shutil.rmtree(store)
    results.append({"case": case, "python": expected, "dbt": stores, "ok": bool(done.success)})
print("RESULTS " + json.dumps(results))
"""


def _cases(sandbox: Path) -> list[dict[str, object]]:
    paths = {"relative": "stores/rel", "absolute": str(sandbox / "stores" / "abs"), "home": "~/stores/home"}
    data = {"relative": "mydata", "absolute": str(sandbox / "data-abs"), "home": "~/data-home"}
    envs: list[dict[str, str]] = [{}, {"BILDSUCHE_DB_PATH": ""}]
    envs += [{"BILDSUCHE_DB_PATH": p} for p in paths.values()]
    envs += [{"BILDSUCHE_DATA_DIR": d} for d in data.values()]
    envs += [{"BILDSUCHE_DB_PATH": "", "BILDSUCHE_DATA_DIR": data["relative"]}]
    envs += [{"BILDSUCHE_DB_PATH": paths["relative"], "BILDSUCHE_DATA_DIR": data["absolute"]}]
    return [{"env": env, "cwd": cwd} for cwd in ("project", "elsewhere") for env in envs]


@pytest.mark.slow
def test_dbt_and_the_python_tools_open_one_store(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    project = sandbox / "project"
    for name in ("dbt_project.yml", "profiles.yml"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, project / name)
    for folder in ("models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(ROOT / folder, project / folder)
    (sandbox / "elsewhere").mkdir()
    (sandbox / "home").mkdir()
    env = {**os.environ, "HOME": str(sandbox / "home"), "BILDSUCHE_PROJECT_DIR": str(project)}
    cases = _cases(sandbox)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(project), str(sandbox), json.dumps(cases)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.rsplit("RESULTS ", 1)[1])
    assert len(results) == len(cases)
    for result in results:
        assert result["ok"], result
        assert result["dbt"] == [result["python"]], result
    # The newcomer's default: data/bildsuche.chdb of the folder the command runs in.
    assert results[0]["python"] == os.path.realpath(project / "data" / "bildsuche.chdb")


def test_project_dir_is_the_checkout_or_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.PROJECT_DIR_ENV, raising=False)
    assert config.project_dir() == ROOT
    monkeypatch.setenv(config.PROJECT_DIR_ENV, str(tmp_path))
    with pytest.raises(UsageError, match=f"{config.PROJECT_DIR_ENV}=.* holds no dbt_project.yml"):
        config.project_dir()
    monkeypatch.delenv(config.PROJECT_DIR_ENV)
    # Neither a checkout nor a packaged copy beside the package: say how to point at one.
    monkeypatch.setattr(config, "PACKAGED_PROJECT", tmp_path / "no-project")
    monkeypatch.setattr(config, "__file__", str(tmp_path / "site-packages" / "bildsuche" / "config.py"))
    with pytest.raises(UsageError, match=r"no bildsuche dbt project found .* set BILDSUCHE_PROJECT_DIR"):
        config.project_dir()


def test_the_ef_search_default_has_one_home() -> None:
    from bildsuche.cli import build_parser
    from bildsuche.serve.engine import Limits

    text = (ROOT / "dbt_project.yml").read_text(encoding="utf-8")
    assert "hnsw_ef_search: 256" in text
    assert config.default_ef_search() == 256 == Limits().ef_search
    assert build_parser().parse_args(["serve"]).ef_search is None  # None: the project's value
