"""The built-in sample: generated photos in visual categories, with downloads.

Deterministic for a seed: the same photo ids, pictures, conversions and
keywords every time, so demo output and tests are reproducible.  Photo ids are
shaped like Unsplash's (11 characters of [A-Za-z0-9_-], some starting with '-').
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from python_embed.types import Conversion, PhotoSource

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
SAMPLE_MARKER = ".bildsuche-sample"

Painter = Callable[[ImageDraw.ImageDraw, int, int, random.Random], None]


@dataclass(frozen=True)
class Category:
    name: str
    keywords: tuple[str, ...]
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    paint: Painter


def _jitter(colour: tuple[int, int, int], rng: random.Random, amount: int = 30) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)
    return (r, g, b)


def _sun(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    r = rng.randint(h // 10, h // 5)
    x, y = rng.randint(r, w - r), rng.randint(h // 3, h // 2 + r)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter((255, 200, 80), rng))
    draw.rectangle((0, int(h * 0.7), w, h), fill=_jitter((40, 20, 30), rng, 15))


def _waves(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    for _ in range(rng.randint(6, 14)):
        y = rng.randint(h // 2, h)
        draw.arc(
            (rng.randint(-w // 2, w // 2), y - 20, rng.randint(w // 2, w * 3 // 2), y + 20),
            180,
            360,
            fill=_jitter((230, 240, 255), rng, 20),
            width=rng.randint(2, 5),
        )


def _trees(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    for _ in range(rng.randint(8, 20)):
        x, base, size = rng.randint(0, w), rng.randint(h // 2, h), rng.randint(h // 8, h // 3)
        draw.polygon(
            [(x, base - size * 2), (x - size // 2, base), (x + size // 2, base)], fill=_jitter((20, 90, 30), rng, 25)
        )


def _snowflakes(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    draw.polygon(
        [(0, h), (rng.randint(w // 4, w * 3 // 4), rng.randint(h // 4, h // 2)), (w, h)],
        fill=_jitter((245, 248, 255), rng, 8),
    )
    for _ in range(rng.randint(30, 80)):
        x, y, r = rng.randint(0, w), rng.randint(0, h), rng.randint(1, 3)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255))


def _windows(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    x = 0
    while x < w:
        bw, bh = rng.randint(w // 12, w // 5), rng.randint(h // 4, h * 4 // 5)
        draw.rectangle((x, h - bh, x + bw, h), fill=_jitter((25, 25, 40), rng, 10))
        for _ in range(rng.randint(4, 16)):
            wx, wy = rng.randint(x + 2, x + max(3, bw - 6)), rng.randint(h - bh + 4, h - 6)
            draw.rectangle((wx, wy, wx + 3, wy + 4), fill=_jitter((255, 220, 120), rng, 20))
        x += bw + rng.randint(0, 6)


def _dunes(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    for i in range(rng.randint(2, 4)):
        y = int(h * (0.45 + 0.15 * i))
        draw.chord((-w // 2, y, w * 3 // 2, y + h), 180, 360, fill=_jitter((210, 160, 90), rng, 25))


def _petals(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    for _ in range(rng.randint(4, 10)):
        x, y, r = rng.randint(0, w), rng.randint(h // 3, h), rng.randint(8, 22)
        colour = _jitter(rng.choice([(230, 60, 120), (250, 210, 40), (160, 80, 220)]), rng, 20)
        for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r)):
            draw.ellipse((x + dx - r, y + dy - r, x + dx + r, y + dy + r), fill=colour)
        draw.ellipse((x - r // 2, y - r // 2, x + r // 2, y + r // 2), fill=(250, 230, 80))


def _clouds(draw: ImageDraw.ImageDraw, w: int, h: int, rng: random.Random) -> None:
    for _ in range(rng.randint(3, 8)):
        x, y = rng.randint(0, w), rng.randint(0, h * 2 // 3)
        for _ in range(5):
            r = rng.randint(12, 30)
            cx, cy = x + rng.randint(-30, 30), y + rng.randint(-10, 10)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_jitter((250, 250, 252), rng, 5))


CATEGORIES: tuple[Category, ...] = (
    Category("sunset", ("sunset", "sky", "orange", "evening", "sun"), (250, 120, 60), (120, 40, 90), _sun),
    Category("ocean", ("ocean", "sea", "water", "waves", "beach"), (60, 140, 200), (10, 50, 110), _waves),
    Category("forest", ("forest", "tree", "green", "nature", "woods"), (150, 200, 160), (30, 70, 35), _trees),
    Category("snow", ("snow", "winter", "mountain", "cold", "white"), (190, 210, 235), (230, 235, 245), _snowflakes),
    Category("city", ("city", "night", "lights", "building", "urban"), (15, 15, 45), (60, 40, 80), _windows),
    Category("desert", ("desert", "sand", "dune", "dry", "travel"), (240, 200, 140), (200, 140, 70), _dunes),
    Category("flowers", ("flower", "bloom", "spring", "garden", "pink"), (120, 170, 90), (60, 110, 50), _petals),
    Category("clouds", ("cloud", "sky", "blue", "weather", "sky"), (90, 150, 230), (170, 205, 245), _clouds),
)
GENERIC_KEYWORDS = ("wallpaper", "background", "hd wallpaper", "beautiful", "landscape")


@dataclass(frozen=True)
class SampleDataset:
    photos: list[PhotoSource]
    conversions: list[Conversion]
    categories: dict[str, str]


def _photo_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        pid = "".join(rng.choice(ID_ALPHABET) for _ in range(11))
        if pid not in taken:
            taken.add(pid)
            return pid


def _paint(category: Category, rng: random.Random) -> Image.Image:
    w, h = rng.choice(((320, 240), (240, 320), (320, 213), (300, 300)))
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    top, bottom = _jitter(category.top, rng), _jitter(category.bottom, rng)
    for y in range(h):
        t = y / max(1, h - 1)
        draw.line((0, y, w, y), fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    category.paint(draw, w, h, rng)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.2)))


def _conversions(photo_id: str, category: Category, rng: random.Random) -> list[Conversion]:
    # Heavy-tailed downloads as on Unsplash: most photos a few, some many, some none.
    downloads = 0 if rng.random() < 0.15 else min(int(rng.paretovariate(1.2)) * rng.randint(1, 4), 200)
    weights = [5, 4, 3, 2, 1]
    rows = []
    for _ in range(downloads):
        if rng.random() < 0.8:
            keyword = rng.choices(category.keywords, weights=weights)[0]
        else:
            keyword = rng.choice(GENERIC_KEYWORDS)
        rows.append(Conversion(photo_id, keyword))
    return rows


def generate_sample(out: Path, *, photos: int = 320, seed: int = 7) -> SampleDataset:
    """Write the sample's JPEGs under ``out`` and return its photos and conversions."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    taken: set[str] = set()
    sources, conversions, categories = [], [], {}
    marker = out / SAMPLE_MARKER
    reuse = marker.is_file() and marker.read_text() == f"{photos} {seed}"
    for index in range(photos):
        category = CATEGORIES[index % len(CATEGORIES)]
        pid = _photo_id(rng, taken)
        if index == 1:
            pid = "-" + pid[1:]  # Unsplash ids may begin with '-'; keep one in the sample
        path = out / f"{category.name}-{index:04d}.jpg"
        picture_rng = random.Random(f"{seed}:{index}")
        if not (reuse and path.is_file()):
            _paint(category, picture_rng).save(path, "JPEG", quality=85)
        sources.append(PhotoSource(pid, path.resolve().as_uri(), str(path)))
        conversions.extend(_conversions(pid, category, rng))
        categories[pid] = category.name
    marker.write_text(f"{photos} {seed}")
    return SampleDataset(sources, conversions, categories)
