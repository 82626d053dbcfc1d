"""Build hook: ship the dbt project inside the wheel.

An installed bildsuche (``pip install .`` or a git URL) has no checkout to run
dbt in, so the project's dbt files are copied into the package as
``bildsuche/project``, where ``bildsuche.config.project_dir()`` finds them.
An editable install needs no copy: the checkout is the project.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
PROJECT_FOLDERS = ("models", "macros", "seeds", "tests/dbt")
SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md"}


class BuildWithProject(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "bildsuche" / "project"
        shutil.rmtree(target, ignore_errors=True)
        for name in PROJECT_FILES:
            self._copy(ROOT / name, target / name)
        for folder in PROJECT_FOLDERS:
            for path in sorted((ROOT / folder).rglob("*")):
                if path.is_file() and path.suffix in SUFFIXES:
                    self._copy(path, target / path.relative_to(ROOT))

    def _copy(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithProject})
