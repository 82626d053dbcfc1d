"""Run dbt commands of the project in-process, on a chosen store."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bildsuche import config
from bildsuche.errors import DbtRunError

# dbt renders a string var as a Jinja template each time a model reads it, so text holding '{{', '{%'
# or '{#' would run as code (`{{ run_query('drop table ...') }}` does).  Such text is passed as a
# template whose output is the text itself: one string literal.
RENDER_CHARS = re.compile(r"\{[{%#]|[#}%]\}")  # dbt's own test for template text


def literal_var(value: Any) -> Any:
    """``value`` as a dbt var that renders to ``value`` (strings inside lists and dicts too)."""
    if isinstance(value, str):
        if not RENDER_CHARS.search(value):
            return value
        return '{{ "' + value.replace("\\", "\\\\").replace('"', '\\"') + '" }}'
    if isinstance(value, list | tuple):
        return [literal_var(v) for v in value]
    if isinstance(value, dict):
        return {k: literal_var(v) for k, v in value.items()}
    return value


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_dbt(
    args: Sequence[str],
    *,
    db_path: Path | None = None,
    dbt_vars: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
    quiet: bool = False,
) -> Any:
    """``dbt <args>`` on the project; raises DbtRunError naming the failed nodes."""
    from dbt.cli.main import dbtRunner

    project = project_dir or config.project_dir()
    argv = [*args, "--project-dir", str(project), "--profiles-dir", str(project)]
    # The vars go in as a mapping, not as `--vars` text: dbt reads that text as YAML, which refuses
    # characters JSON writes as surrogate pairs (an emoji in a photo id) and raw control characters.
    options = {"vars": literal_var(dict(dbt_vars))} if dbt_vars else {}
    if quiet:
        argv = ["--quiet", *argv]
    env = {config.DB_PATH_ENV: str(db_path)} if db_path else {}
    if config.project_is_packaged(project):
        # An installed package's project is no place for dbt's artifacts and logs.
        work = config.data_dir() / "dbt"
        env.setdefault("DBT_TARGET_PATH", os.environ.get("DBT_TARGET_PATH") or str(work / "target"))
        env.setdefault("DBT_LOG_PATH", os.environ.get("DBT_LOG_PATH") or str(work / "logs"))
    with environment(env):
        result = dbtRunner().invoke(argv, **options)
    if result.success:
        return result.result
    if result.exception is not None:
        raise DbtRunError(f"dbt {args[0]} failed: {result.exception}") from result.exception
    failed = []
    for node in getattr(result.result, "results", []) or []:
        if str(node.status) in ("error", "fail", "runtime error"):
            # Tests that store their failing rows say where: the rows explain the failure.
            stored = getattr(node.node, "relation_name", None) if node.node.resource_type == "test" else None
            failed.append(f"{node.node.name}: {node.message}" + (f" (rows: select * from {stored})" if stored else ""))
    raise DbtRunError(f"dbt {args[0]} failed: " + ("; ".join(failed) or "see the log above"))
