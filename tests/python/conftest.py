"""Every test runs offline against temporary stores and data directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from datasets_helpers import SyntheticDataset, write_synthetic


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILDSUCHE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BILDSUCHE_DB_PATH", str(tmp_path / "store"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt-logs"))


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from python_embed.demo_model import create_demo_model

    return create_demo_model(tmp_path_factory.mktemp("model") / "clip")


@pytest.fixture()
def synthetic(tmp_path: Path) -> Iterator[SyntheticDataset]:
    yield write_synthetic(tmp_path / "dataset")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full", action="store_true", help="also run the long variants of the reliability battery (marker `full`)"
    )


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    # quick: the same examples on every run (CI stays reproducible); full: more, and new ones each run.
    settings.register_profile("quick", max_examples=40, deadline=None, derandomize=True)
    settings.register_profile("full", max_examples=600, deadline=None)
    settings.load_profile("full" if config.getoption("--full") else "quick")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        return
    skip = pytest.mark.skip(reason="a long reliability variant: run with --full (docs/reliability.md)")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip)
