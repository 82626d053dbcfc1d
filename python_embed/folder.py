"""Photos from a folder of image files; the photo_id is the relative path."""

from __future__ import annotations

from pathlib import Path

from bildsuche.errors import InputDataError
from python_embed.types import PhotoSource

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def photo_id_for(root: Path, path: Path) -> str:
    relative = path.relative_to(root).with_suffix("")
    return relative.as_posix()


def scan_folder(root: Path) -> list[PhotoSource]:
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"{root}: not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    sources = []
    seen: dict[str, Path] = {}
    for path in files:
        photo_id = photo_id_for(root, path)
        if photo_id in seen:
            raise InputDataError(f"{path} and {seen[photo_id]} would both be photo {photo_id!r}")
        seen[photo_id] = path
        sources.append(PhotoSource(photo_id, path.resolve().as_uri(), str(path)))
    return sources
