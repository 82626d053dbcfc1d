"""bildsuche.files: whole files or none, with the modes any new file gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bildsuche import files
from bildsuche.errors import OutputError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_get_the_umask_mode_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        files.write_files(
            {tmp_path / "a.txt": lambda p: p.write_text("a"), tmp_path / "b.txt": lambda p: p.write_text("b")}
        )
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == _mode(tmp_path / "b.txt") == 0o644


def test_a_failed_write_replaces_none_of_the_set(tmp_path: Path) -> None:
    files.write_text(tmp_path / "a.txt", "old a")
    files.write_text(tmp_path / "b.txt", "old b")

    def broken(path: Path) -> None:
        path.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"cannot write .*b\.txt: No space left on device"):
        files.write_files({tmp_path / "a.txt": lambda p: p.write_text("new a"), tmp_path / "b.txt": broken})
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert (tmp_path / "b.txt").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert files.stale_parts(tmp_path) == []


def test_the_data_set_files_get_normal_modes(tmp_path: Path, demo_model_dir: Path) -> None:
    from python_embed.build import build
    from python_embed.embedder import ClipEmbedder

    old = os.umask(0o022)
    try:
        build("sample:6", tmp_path / "out", lambda: ClipEmbedder(str(demo_model_dir)))
    finally:
        os.umask(old)
    written = sorted((tmp_path / "out").glob("*.parquet"))
    assert [p.name for p in written] == ["conversions.parquet", "failures.parquet", "photos.parquet"]
    assert {_mode(p) for p in written} == {0o644}
