"""One line per request: what a BI tool sent, for whom, and how it ended.

    2026-11-30T07:55:30.123Z user=default query_id=… rows=10 ms=1.842 code=0 sql="SELECT rank, photo_id …"

`rows` counts the rows read (or, for an INSERT, written); `code` is the
ClickHouse error code of a refused or failed request, 0 for success; `sql` is
the start of the statement as a JSON string (one line, whatever it holds).
The writer's statements are always logged: to the log when one is given,
else to standard error.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

SQL_CHARS = 300


@dataclass(frozen=True)
class Entry:
    user: str
    query_id: str
    sql: str
    rows: int
    seconds: float
    code: int


def format_entry(entry: Entry, at: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
    sql = entry.sql if len(entry.sql) <= SQL_CHARS else entry.sql[:SQL_CHARS] + "…"
    return (
        f"{stamp} user={entry.user} query_id={entry.query_id} rows={entry.rows} "
        f"ms={entry.seconds * 1000:.3f} code={entry.code} sql={json.dumps(sql, ensure_ascii=False)}"
    )


class QueryLog:
    """``stream``: every request (None: none); the writer's requests go to ``writer_stream`` when
    there is no ``stream``."""

    def __init__(self, stream: TextIO | None, writer_stream: TextIO | None = None) -> None:
        self.stream = stream
        self.writer_stream = writer_stream if writer_stream is not None else sys.stderr
        self._lock = threading.Lock()

    def record(self, entry: Entry, *, writer: bool) -> None:
        target = self.stream if self.stream is not None else (self.writer_stream if writer else None)
        if target is None:
            return
        line = format_entry(entry, time.time()) + "\n"
        with self._lock:
            try:
                target.write(line)
                target.flush()
            except (OSError, ValueError) as exc:  # a full disk must not fail the request; say so once
                if target is not sys.stderr:
                    print(f"bildsuche serve: cannot write the query log: {exc}", file=sys.stderr)
                    self.stream = sys.stderr
