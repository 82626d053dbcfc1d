"""Image files that real folders and CDNs hold, and files made to hurt a decoder."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ORIENTATION = 0x0112


def pattern(size: tuple[int, int] = (320, 240)) -> Image.Image:
    """An asymmetric picture: a rotation or a mirror of it is a different picture."""
    width, height = size
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    red = 255 * x * np.ones_like(y)
    green = 255 * y * np.ones_like(x)
    blue = 255 * ((x < 0.3) & (y < 0.5))
    return Image.fromarray(np.stack([red, green, blue], axis=2).astype(np.uint8))


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of width x height zero pixels: kilobytes on disk, width*height bytes decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def rgb48() -> bytes:
    """The pattern as a 16-bit-per-channel RGB PNG (Pillow reads it, but does not write it)."""
    pixels = np.asarray(pattern(), dtype=np.uint16) * 257
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    height, width = pixels.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def gif_bomb() -> bytes:
    """A GIF whose header claims a 65535 x 65535 canvas."""
    data = bytearray(_save(Image.new("P", (4, 4)), "GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def exif_rotated() -> bytes:
    """The pattern stored turned by 90 degrees, with the EXIF orientation that turns it back."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 CW to display"
    return _save(pattern().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


def grey16() -> bytes:
    """A 16-bit greyscale gradient PNG (mode I;16)."""
    ramp = np.tile(np.linspace(0, 65535, 320), (240, 1)).astype(np.uint16)
    return _save(Image.fromarray(ramp), "PNG")


def grey8() -> bytes:
    ramp = np.tile(np.linspace(0, 255, 320), (240, 1)).astype(np.uint8)
    return _save(Image.fromarray(ramp), "PNG")


def animated_gif(frames: int = 40) -> bytes:
    images = [Image.new("P", (240, 240), i * 5 % 256) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)
    return buffer.getvalue()


def corrupt_png() -> bytes:
    """A PNG whose compressed pixel data is junk, with a checksum that matches the junk."""
    data = bytearray(_save(pattern(), "PNG"))
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    body = bytes(data[at + 4 : at + 4 + length])
    junk = body[:2] + bytes((b * 7 + 3) % 256 for b in body[2:])
    return bytes(data[: at - 4]) + _png_chunk(b"IDAT", junk) + bytes(data[at + 8 + length :])


def palette_with_transparency() -> bytes:
    image = pattern().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _save(image, "PNG", transparency=0)


# name -> (file name, bytes factory, embeddable)
ImageCase = tuple[str, Callable[[], bytes], bool]
CASES: dict[str, ImageCase] = {
    "rgb_jpeg": ("rgb.jpg", lambda: _save(pattern(), "JPEG"), True),
    "cmyk_jpeg": ("cmyk.jpg", lambda: _save(pattern().convert("CMYK"), "JPEG"), True),
    "grey_jpeg": ("grey.jpg", lambda: _save(pattern().convert("L"), "JPEG"), True),
    "progressive_jpeg": ("progressive.jpg", lambda: _save(pattern(), "JPEG", progressive=True), True),
    "exif_rotated_jpeg": ("rotated.jpg", exif_rotated, True),
    "grey16_png": ("grey16.png", grey16, True),
    "rgb48_png": ("rgb48.png", rgb48, True),
    "palette_png": ("palette.png", lambda: _save(pattern().convert("P"), "PNG"), True),
    "palette_transparency_png": ("palette-t.png", palette_with_transparency, True),
    "rgba_png": ("rgba.png", lambda: _save(pattern().convert("RGBA"), "PNG"), True),
    "la_png": ("la.png", lambda: _save(pattern().convert("LA"), "PNG"), True),
    "bilevel_png": ("bilevel.png", lambda: _save(pattern().convert("1"), "PNG"), True),
    "tiny_png": ("tiny.png", lambda: _save(Image.new("RGB", (1, 1), "red"), "PNG"), True),
    "sliver_png": ("sliver.png", lambda: _save(Image.new("RGB", (1, 20000), "red"), "PNG"), True),
    "animated_gif": ("animated.gif", animated_gif, True),
    "webp": ("photo.webp", lambda: _save(pattern(), "WEBP"), True),
    "tiff_float": ("float.tiff", lambda: _save(pattern().convert("F"), "TIFF"), True),
    "bmp": ("photo.bmp", lambda: _save(pattern(), "BMP"), True),
    "truncated_jpeg": ("truncated.jpg", lambda: _save(pattern(), "JPEG")[:1500], False),
    "truncated_png": ("truncated.png", lambda: _save(pattern(), "PNG")[:400], False),
    "corrupt_png_data": ("corrupt.png", corrupt_png, False),
    "png_bomb_warning_range": ("bomb.png", lambda: png_bomb(10_000, 10_000), False),
    "png_bomb_over_pillow_limit": ("bigbomb.png", lambda: png_bomb(20_000, 10_000), False),
    "gif_bomb": ("bomb.gif", gif_bomb, False),
    "svg": ("vector.png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', False),
    "html_as_jpeg": ("page.jpg", lambda: b"<!doctype html><html><body>not a photo</body></html>", False),
    "pdf_as_png": ("doc.png", lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", False),
    "zip_as_jpeg": ("archive.jpg", lambda: b"PK\x03\x04" + b"\x00" * 60, False),
    "empty_file": ("empty.jpg", lambda: b"", False),
    "jpeg_magic_only": ("magic.jpg", lambda: b"\xff\xd8\xff\xe0", False),
}


def write_cases(folder: Path, names: list[str] | None = None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in names or list(CASES):
        file_name, make, _ = CASES[name]
        path = folder / name / file_name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(make())
        written[name] = path
    return written


def mutations(seed: int, count: int) -> list[tuple[str, bytes]]:
    """Damaged copies of valid files: flipped bytes, cut tails, inserted junk."""
    rng = random.Random(seed)
    sources = [(name, CASES[name][1]()) for name, (_, _, ok) in CASES.items() if ok and name != "sliver_png"]
    damaged = []
    for i in range(count):
        name, data = rng.choice(sources)
        buffer = bytearray(data)
        how = i % 3
        if how == 0:
            for _ in range(rng.randint(1, 8)):
                buffer[rng.randrange(len(buffer))] = rng.randrange(256)
        elif how == 1:
            del buffer[rng.randrange(1, len(buffer)) :]
        else:
            at = rng.randrange(len(buffer))
            buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        damaged.append((f"{name}-{i}", bytes(buffer)))
    return damaged
