"""Where things live: the dbt project, the data folder, the embedded store, and the
project's own defaults.

Every tool reads the same environment variables, and profiles.yml (which dbt
reads) computes the store path by the same rule, so that dbt and the Python
tools always open one store:

* ``BILDSUCHE_DB_PATH``: the store directory;
* else ``$BILDSUCHE_DATA_DIR/bildsuche.chdb``;
* else ``data/bildsuche.chdb``.

A relative path is taken from the current directory, as dbt takes it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

from bildsuche.errors import UsageError

DB_PATH_ENV = "BILDSUCHE_DB_PATH"
PROJECT_DIR_ENV = "BILDSUCHE_PROJECT_DIR"
TARGET_ENV = "BILDSUCHE_TARGET"
MODEL_ENV = "BILDSUCHE_MODEL"
DATA_DIR_ENV = "BILDSUCHE_DATA_DIR"
CLUSTER_ENV = "CLICKHOUSE_CLUSTER"

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
# Keywords `bildsuche keywords` embeds unless told otherwise, the most searched first:
# keyword_search_relevance compares every one with every photo (11 s for 200 at 25k photos,
# 66 s for 1,000, on a loaded machine: docs/benchmarks.md).
DEFAULT_KEYWORD_LIMIT = 200
TARGETS = ("embedded", "clickhouse", "myscale")
DEFAULT_DATA_DIR = "data"
STORE_NAME = "bildsuche.chdb"
PROJECT_FILE = "dbt_project.yml"
# Where setup.py puts the dbt project inside an installed package.
PACKAGED_PROJECT = Path(__file__).resolve().parent / "project"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "")
    if not value.strip():
        return None
    return Path(os.path.abspath(os.path.expanduser(value.strip())))


def project_dir() -> Path:
    """The dbt project: $BILDSUCHE_PROJECT_DIR, else the checkout this package sits in,
    else the copy an installed package carries.  Raises UsageError when none holds a
    dbt_project.yml."""
    env = _env_path(PROJECT_DIR_ENV)
    if env is not None:
        if not (env / PROJECT_FILE).is_file():
            raise UsageError(f"{PROJECT_DIR_ENV}={env} holds no {PROJECT_FILE}: point it at the bildsuche dbt project")
        return env
    checkout = Path(__file__).resolve().parents[1]
    for candidate in (checkout, PACKAGED_PROJECT):
        if (candidate / PROJECT_FILE).is_file() and (candidate / "models").is_dir():
            return candidate
    raise UsageError(
        f"no bildsuche dbt project found (looked in {checkout} and {PACKAGED_PROJECT}): "
        f"set {PROJECT_DIR_ENV} to a folder holding {PROJECT_FILE}, or reinstall bildsuche"
    )


def seed_file(name: str) -> Path:
    """File ``name`` in the dbt project's (first) seed path, as dbt seeds it."""
    project = project_dir()
    seed_dir = "seeds"
    try:
        with (project / PROJECT_FILE).open(encoding="utf-8") as file:
            paths = (yaml.safe_load(file) or {}).get("seed-paths") or [seed_dir]
        seed_dir = str(paths[0])
    except (OSError, yaml.YAMLError, AttributeError, IndexError):
        pass  # no readable project file: dbt's default seed path
    return project / seed_dir / name


def project_is_packaged(project: Path | None = None) -> bool:
    """Whether the project is the installed package's copy, which dbt must not write into."""
    return (project or project_dir()).resolve() == PACKAGED_PROJECT


def data_dir() -> Path:
    return _env_path(DATA_DIR_ENV) or Path(os.path.abspath(DEFAULT_DATA_DIR))


def db_path() -> Path:
    """The embedded store directory."""
    return _env_path(DB_PATH_ENV) or data_dir() / STORE_NAME


def default_target() -> str:
    return os.environ.get(TARGET_ENV, "").strip() or "embedded"


def cluster_name(target: str | None = None) -> str:
    """The ClickHouse cluster the `clickhouse` target's tables are sharded over
    ($CLICKHOUSE_CLUSTER, as profiles.yml reads it), or '' for a single server and other targets."""
    if (target or default_target()) != "clickhouse":
        return ""
    return os.environ.get(CLUSTER_ENV, "").strip()


@functools.cache
def _project_vars(project: Path) -> dict[str, Any]:
    with (project / PROJECT_FILE).open(encoding="utf-8") as file:
        return dict(yaml.safe_load(file).get("vars") or {})


def project_var(name: str) -> Any:
    """The default of a dbt var, as dbt_project.yml sets it: the one home of such defaults."""
    try:
        return _project_vars(project_dir())[name]
    except KeyError:
        raise UsageError(f"dbt_project.yml sets no var {name!r}") from None


def default_ef_search() -> int:
    """Candidates an index search keeps unless told otherwise (var `hnsw_ef_search`)."""
    return int(project_var("hnsw_ef_search"))
