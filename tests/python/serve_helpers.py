"""Start and stop `bildsuche serve` in a child process, for tests and benchmarks."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

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


@dataclass
class LoadOutcome:
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # status other than 200, or an exception
    wrong: list[str] = field(default_factory=list)  # 200 with another answer than expected


def hammer(url: str, queries: list[tuple[str, dict[str, str], bytes]], clients: int, seconds: float) -> LoadOutcome:
    """``clients`` threads, each with its own keep-alive session, send (sql, params) in turn for
    ``seconds`` and compare every answer with the expected bytes."""
    outcome = LoadOutcome()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        session = requests.Session()
        latencies, errors, wrong = [], [], []
        i = index
        while time.monotonic() < stop_at:
            sql, params, expected = queries[i % len(queries)]
            started = time.perf_counter()
            try:
                reply = session.post(url, params=params, data=sql.encode(), timeout=60)
            except requests.RequestException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                if reply.status_code != 200:
                    errors.append(f"{reply.status_code}: {reply.text[:200]}")
                elif reply.content != expected:
                    wrong.append(f"{sql} {params}: {reply.content[:100]!r}")
            latencies.append(time.perf_counter() - started)
            i += 1
        session.close()
        with lock:
            outcome.requests += len(latencies)
            outcome.latencies += latencies
            outcome.errors += errors
            outcome.wrong += wrong

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.latencies.sort()
    return outcome


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (Linux: VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"no VmHWM for process {pid}")
