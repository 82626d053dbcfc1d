"""A throttled one-line progress display on stderr for the command line."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLine:
    def __init__(self, label: str, unit: str, stream: TextIO | None = None, every: float = 0.5) -> None:
        self.label, self.unit = label, unit
        self.stream = stream or sys.stderr
        self.every = every
        self.started = time.perf_counter()
        self.shown = 0.0

    def update(self, done: int, total: int, label: str | None = None) -> None:
        now = time.perf_counter()
        if label and label != self.label:
            self.label, self.started, self.shown = label, now, 0.0
        if done < total and now - self.shown < self.every:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        end = "\n" if done >= total else ""
        self.stream.write(
            f"\r{self.label}: {done:,}/{total:,} {self.unit} ({rate:,.0f} {self.unit}/s, eta {eta:.0f}s){end}"
        )
        self.stream.flush()
