"""Small measuring helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Timed:
    seconds: float
    peak_rss_mib: float
    output: str


def timed(argv: list[str], env: dict[str, str] | None = None) -> Timed:
    """Run argv to its end; its wall time and peak RSS (wait4 reports the child's own)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{output[-3000:]}")
    return Timed(seconds, usage.ru_maxrss / 1024, output)


def timed_each(call: Callable[[T], R], items: Iterable[T]) -> tuple[list[float], list[R]]:
    """``call`` on each item in turn: the wall time of each call in ms, and what each returned."""
    latencies, results = [], []
    for item in items:
        started = time.perf_counter()
        results.append(call(item))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, results


def vector_literal(vector: Sequence[float]) -> str:
    """A vector as the SQL array literal a script would send (7 significant digits: float32's)."""
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    load = os.getloadavg()[0]
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.2f} at start, "
        f"Python {platform.python_version()}"
    )
