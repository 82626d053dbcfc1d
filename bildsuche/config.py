"""Where things live: the project directory, the embedded store, model caches.

Every tool (dbt through profiles.yml, python_embed, seeds_loader, the demo)
reads the same environment variables, so one `BILDSUCHE_DB_PATH` points them
all at one store.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_PATH_ENV = "BILDSUCHE_DB_PATH"
PROJECT_DIR_ENV = "BILDSUCHE_PROJECT_DIR"
TARGET_ENV = "BILDSUCHE_TARGET"
MODEL_ENV = "BILDSUCHE_MODEL"
DATA_DIR_ENV = "BILDSUCHE_DATA_DIR"

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
TARGETS = ("embedded", "clickhouse", "myscale")


def project_dir() -> Path:
    """The dbt project: $BILDSUCHE_PROJECT_DIR, else the checkout this package sits in,
    else the current directory when it holds dbt_project.yml."""
    env = os.environ.get(PROJECT_DIR_ENV)
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "dbt_project.yml").is_file():
        return checkout
    return Path.cwd()


def data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).resolve() if env else project_dir() / "data"


def db_path() -> Path:
    """The embedded store directory (relative values are taken from the project dir,
    as dbt, run there, takes them)."""
    env = os.environ.get(DB_PATH_ENV)
    if env:
        path = Path(env).expanduser()
        return path if path.is_absolute() else (project_dir() / path)
    return data_dir() / "bildsuche.chdb"


def default_target() -> str:
    return os.environ.get(TARGET_ENV, "embedded")
