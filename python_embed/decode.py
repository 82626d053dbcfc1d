"""Decode a photo file into an RGB image for CLIP, whatever the file holds.

Photos come from folders and CDNs: CMYK and greyscale JPEGs, 16-bit PNGs,
palettes with transparency, animations, EXIF-rotated camera files, and files
made to hurt a decoder (decompression bombs, truncated or corrupt data, other
formats under an image extension).  Each either decodes or raises one of
DECODE_ERRORS, which the pipeline records as the photo's failure.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from python_embed.preprocess import ClipPreprocess

DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError)

# Pixels decoded per image, after JPEG draft scaling: thumbnails have tens of
# thousands, camera JPEGs draft down to a few million, so only lossless files
# of over 50 megapixels (or bombs claiming as much) are refused, before any
# pixel is decoded.  Pillow's own limit starts at 89 megapixels, and merely warns.
MAX_DECODE_PIXELS = 50_000_000
EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that shows the photo upright, as viewers do.
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SIXTEEN_BIT_GREY = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


class ImageTooLarge(ValueError):
    """An image with more pixels than MAX_DECODE_PIXELS."""


def decode(path: str | BinaryIO, preprocess: ClipPreprocess) -> Image.Image:
    """The photo at ``path`` (or in a file object) as RGB, upright; the first frame of an animation."""
    with Image.open(path) as img:
        img.draft("RGB", preprocess.draft_size)  # JPEG: decode at the smallest scale that loses nothing
        width, height = img.size
        if width * height > MAX_DECODE_PIXELS:
            raise ImageTooLarge(f"{width}x{height} pixels, over the limit of {MAX_DECODE_PIXELS:,}")
        img.load()
        orientation = img.getexif().get(EXIF_ORIENTATION, 1)
        if img.mode in SIXTEEN_BIT_GREY:
            # convert("RGB") would clip 16-bit values at 255: nearly every pixel white.
            levels = np.asarray(img, dtype=np.uint32) * 255 // 65535
            rgb = Image.fromarray(levels.astype(np.uint8), "L").convert("RGB")
        else:
            rgb = img.convert("RGB")
    upright = UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return rgb.transpose(upright) if upright is not None else rgb
