"""Files written whole or not at all.

Every file is written beside its final name and renamed over it, so a reader
sees the old file or the new one, and a full disk or a read-only folder leaves
the old one in place.  The temporary name is opened like any new file (the
umask decides its mode), not with mkstemp's 0600.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from bildsuche.errors import OutputError

Writer = Callable[[Path], object]
"""Writes a file's content to the path it is given."""

TMP_SUFFIX = ".tmp"
_serial = itertools.count()


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{next(_serial)}{TMP_SUFFIX}")


def write_files(writes: Mapping[Path, Writer]) -> None:
    """Write every file beside its path, then rename them all into place.

    Writing is what fails on a full disk or a read-only folder, so such a
    failure replaces none of the files: an earlier set stays whole, and no
    partial file is left behind.  Raises OutputError.
    """
    staged: list[tuple[Path, Path]] = []
    current = next(iter(writes), Path("."))
    try:
        for current, write in writes.items():
            current.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temporary(current)
            staged.append((tmp, current))
            write(tmp)
        for tmp, current in staged:
            os.replace(tmp, current)
    except OSError as exc:
        raise OutputError(f"cannot write {current}: {exc.strerror or exc}") from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def write_file(path: Path, write: Writer) -> None:
    """One file, written whole or not at all; raises OutputError."""
    write_files({path: write})


def write_text(path: Path, text: str) -> None:
    write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def stale_parts(folder: Path, pattern: str = "*") -> list[Path]:
    """Temporary files a killed process left in ``folder`` for files matching ``pattern``."""
    return sorted(folder.glob(f".{pattern}.*{TMP_SUFFIX}"))
