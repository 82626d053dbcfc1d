"""Thumbnails of the store's photos for BI tools: `GET /photos/<photo_id>.jpg`.

A browser cannot load a photo stored as a `file://` URL (a folder of images,
the built-in sample), so the marts carry `picture_url`: the photo's own URL
when it is on the web, else this route of serve.  The picture is found only
in the folders serve was given (`--pictures DIR`: a data set folder, with its
download cache, or an image folder): a file:// URL outside them, or a file
that is not an image, is answered 404 like a photo that does not exist.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image, UnidentifiedImageError

from bildsuche.dataset import CACHE_DIR
from python_embed.fetch import ImageCache, thumbnail_url

DECODE_ERRORS = (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError, SyntaxError)
MAX_PIXELS = 50_000_000  # as python_embed: larger files are refused before decoding
SIZE = 256
CACHED = 512  # thumbnails kept in memory (~15 KB each)

Lookup = Callable[[str], str | None]  # photo_id -> photo_image_url, None for an unknown photo


class PictureNotFound(Exception):
    pass


class Pictures:
    def __init__(self, roots: Sequence[Path], lookup: Lookup, size: int = SIZE) -> None:
        self.roots = [Path(os.path.realpath(root)) for root in roots]
        self.caches = [ImageCache(root / CACHE_DIR) for root in self.roots]
        self.lookup = lookup
        self.size = size
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def jpeg(self, photo_id: str) -> bytes:
        """The photo as a JPEG of at most ``size`` pixels a side; PictureNotFound when there is none here."""
        with self._lock:
            if photo_id in self._memory:
                self._memory.move_to_end(photo_id)
                return self._memory[photo_id]
        url = self.lookup(photo_id)
        if url is None:
            raise PictureNotFound(f"no photo {photo_id!r} in the store")
        data = self._thumbnail(self._locate(url))
        with self._lock:
            self._memory[photo_id] = data
            while len(self._memory) > CACHED:
                self._memory.popitem(last=False)
        return data

    def _inside(self, path: Path) -> bool:
        resolved = Path(os.path.realpath(path))
        return resolved.is_file() and any(resolved.is_relative_to(root) for root in self.roots)

    def _locate(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme == "file":
            path = Path(unquote(parts.path))
            if self._inside(path):
                return path
        elif parts.scheme in ("http", "https"):
            for cache in self.caches:
                for key in (thumbnail_url(url), url):  # the build caches thumbnails, `query` the URL itself
                    found = cache.get(key)
                    if found is not None and self._inside(found):
                        return found
        raise PictureNotFound("the photo's picture is in none of the --pictures folders")

    def _thumbnail(self, path: Path) -> bytes:
        try:
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise PictureNotFound("the picture is too large")
                image.draft("RGB", (self.size, self.size))
                picture = image.convert("RGB")
        except DECODE_ERRORS as exc:
            raise PictureNotFound(f"not an image: {type(exc).__name__}") from exc
        picture.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85)
        return out.getvalue()
