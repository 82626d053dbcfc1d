"""Start and stop `bildsuche serve` in a child process, for tests and benchmarks."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

# What each server wrote to stderr, by pid: drained by a thread, so a chatty server never blocks on a full pipe.
_stderr: dict[int, list[str]] = {}


def start_serve(store: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bildsuche.cli", "serve", "--path", str(store), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not match:
        process.kill()
        raise AssertionError(f"serve did not start: {line!r} {process.stderr.read()}")
    lines = _stderr.setdefault(process.pid, [])
    threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True).start()
    return process, int(match[1])


def server_stderr(process: subprocess.Popen[str]) -> str:
    """What the server has written to stderr so far (tracebacks would show up here)."""
    return "".join(_stderr.get(process.pid, []))


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
