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
        self.started: float | None = None  # the clock starts with the first update, not at set-up
        self.shown = 0.0

    def update(self, done: int, total: int, label: str | None = None) -> None:
        now = time.perf_counter()
        if label and label != self.label:
            self.label, self.started, self.shown = label, None, 0.0
        if self.started is None:
            self.started = now
        if done < total and now - self.shown < self.every:
            return
        self.shown = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0.01 else 0.0
        speed = f"{rate:,.0f} {self.unit}/s" if rate else "starting"
        eta = f", eta {(total - done) / rate:.0f}s" if rate and done < total else ""
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{self.label}: {done:,}/{total:,} {self.unit} ({speed}{eta}){end}")
        self.stream.flush()
        _unfinished[:] = [] if end else [self.stream]


# The stream of a progress line not yet ended by a newline: an error message must not continue it.
_unfinished: list[TextIO] = []


def end_unfinished_line() -> None:
    """End a progress line left open (the command failed before it reached 100 %)."""
    for stream in _unfinished:
        stream.write("\n")
        stream.flush()
    _unfinished.clear()
