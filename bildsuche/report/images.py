"""Pictures for the report's tiles, from wherever the photo can be found.

In order: a local file (a folder source stores file:// URLs; a bare path
works too), the build's download cache (keyed like python_embed's Fetcher
keys it), then the network through that Fetcher, with short timeouts and
one retry so that a report over unreachable photos finishes quickly.  A photo
that cannot be shown gets a reason instead of a picture, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from python_embed.fetch import FetchConfig, Fetcher, FetchError, ImageCache, thumbnail_url

# Enough for a photo CDN's thumbnail; a report over many dead links must not take minutes.
REPORT_FETCH = FetchConfig(connect_timeout=5.0, read_timeout=10.0, retries=1, backoff=0.2, max_backoff=1.0)
DECODE_ERRORS = (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError, SyntaxError)


@dataclass(frozen=True)
class Picture:
    """A photo scaled to fit a ``size`` x ``size`` square, or why there is none."""

    image: Image.Image | None
    problem: str | None = None


class PictureSource:
    """Finds and scales the pictures of photo URLs; safe to call from worker threads."""

    def __init__(
        self,
        cache: ImageCache,
        *,
        fetch: bool = True,
        size: int = 160,
        workers: int = 8,
        config: FetchConfig = REPORT_FETCH,
    ) -> None:
        self.cache = cache
        self.size = size
        self.workers = workers
        self.query = config.thumbnail_query
        self.fetcher = Fetcher(cache, config) if fetch else None  # it keeps what it downloads in the cache

    def pictures(self, urls: Iterable[str]) -> dict[str, Picture]:
        """One Picture for every distinct URL, found concurrently."""
        unique = list(dict.fromkeys(urls))
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(unique)))) as pool:
            return dict(zip(unique, pool.map(self.picture, unique), strict=True))

    def picture(self, url: str) -> Picture:
        try:
            path = self._locate(url)
        except FetchError as exc:
            return Picture(None, f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason)
        except OSError as exc:  # the cache could not be written, say
            return Picture(None, f"io: {exc}")
        return self._decode(path)

    def _locate(self, url: str) -> Path:
        if not url:
            raise FetchError("no_url", "")
        parts = urlsplit(url)
        if parts.scheme == "file" or not parts.scheme:
            path = Path(unquote(parts.path)) if parts.scheme else Path(url)
            if not path.is_file():
                raise FetchError("missing_file", str(path))
            return path
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise FetchError("bad_url", "not an http(s) or file URL")
        # The build caches under the thumbnail URL, `python_embed query` under the URL itself.
        for key in (thumbnail_url(url, self.query), url):
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        if self.fetcher is None:
            raise FetchError("not_cached", "not in the image cache, and fetching is off")
        return self.fetcher.fetch(url)

    def _decode(self, path: Path) -> Picture:
        try:
            with Image.open(path) as image:
                image.draft("RGB", (self.size, self.size))  # JPEGs decode at a reduced scale: much faster
                picture = image.convert("RGB")
        except DECODE_ERRORS as exc:
            return Picture(None, f"not_image: {type(exc).__name__}")
        picture.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        return Picture(picture)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font: no font files needed on the machine."""
    return ImageFont.load_default(size=size)


def placeholder(size: int) -> Image.Image:
    """The picture of a photo that has none: grey, crossed out, labelled, never mistaken for a photo."""
    image = Image.new("RGB", (size, size), (224, 224, 224))
    draw = ImageDraw.Draw(image)
    inset = size // 8
    for line in (((inset, inset), (size - inset, size - inset)), ((inset, size - inset), (size - inset, inset))):
        draw.line(line, fill=(190, 60, 60), width=max(2, size // 40))
    label, face = "no image", font(max(10, size // 10))
    left, top, right, bottom = draw.textbbox((0, 0), label, font=face)
    x, y = (size - right - left) // 2, (size - bottom - top) // 2
    margin = max(3, size // 40)
    draw.rectangle((x + left - margin, y + top - margin, x + right + margin, y + bottom + margin), fill=(245, 245, 245))
    draw.text((x, y), label, fill=(40, 40, 40), font=face)
    return image
