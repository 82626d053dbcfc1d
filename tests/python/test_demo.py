"""`bildsuche demo` end to end, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_prints_the_three_marts(tmp_path: Path) -> None:
    env = {**os.environ, "BILDSUCHE_DB_PATH": str(tmp_path / "store")}
    report = ["--report", str(tmp_path / "report")]
    done = subprocess.run(
        [sys.executable, "-m", "bildsuche.cli", "demo", "--photos", "64", "--top-k", "5", "--quiet", *report],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "== analytics.top_k_neighbours (5 rows)" in out
    assert "== analytics.conversions_per_candidate (5 rows)" in out
    assert "== analytics.keyword_breakdown" in out
    for mart in ("keyword_suggestions", "underexposed_lookalikes", "keyword_search_relevance"):
        assert f"== analytics.{mart} (" in out
    assert "== analytics.keyword_search_relevance (0 rows" not in out  # the demo embeds the keywords
    assert "random model on generated photos" in out
    assert "randomly initialised demo CLIP model" in out
    assert f"store: {tmp_path / 'store'}  (64 photos" in out
    # The sample's pictures are local files: the report has every one of them.
    assert f"report: {tmp_path / 'report' / 'report.html'} (6 tiles) and" in out and "(960x200)" in out
    assert "randomly initialised demo CLIP model" in (tmp_path / "report" / "report.html").read_text(encoding="utf-8")


def test_demo_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "BILDSUCHE_DB_PATH": str(tmp_path / "store")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bildsuche.cli",
            "demo",
            "--photos",
            "16",
            "--quiet",
            "--target-photo-id",
            "no-such-photo",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1
    assert "bildsuche: error: dbt build failed" in done.stderr
    assert "Traceback" not in done.stderr
