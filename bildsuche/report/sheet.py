"""The contact sheet: the target and its neighbours as one PNG grid.

Every cell has the same size (a square picture area over a caption band), so
the sheet's size follows from the number of tiles alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from bildsuche.report.images import font, placeholder

BACKGROUND = (255, 255, 255)
TARGET_FRAME = (214, 120, 0)
TEXT = (30, 30, 30)
MUTED = (110, 110, 110)


@dataclass(frozen=True)
class Layout:
    tile: int = 160  # the square picture area of a cell, in pixels
    caption: int = 40  # the text band under it
    columns: int = 6
    pad: int = 4  # between a picture and its cell's edge

    @property
    def picture(self) -> int:
        """The largest side a picture may have."""
        return self.tile - 2 * self.pad

    def size(self, count: int) -> tuple[int, int]:
        """(width, height) of a sheet of ``count`` tiles."""
        columns = min(count, self.columns)
        rows = math.ceil(count / self.columns)
        return columns * self.tile, rows * (self.tile + self.caption)


@dataclass(frozen=True)
class SheetTile:
    picture: Image.Image | None  # None: drawn as the placeholder
    title: str
    detail: str
    highlight: bool = False


def _fit(draw: ImageDraw.ImageDraw, text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    if not isinstance(face, ImageFont.FreeTypeFont):
        text = text.encode("latin-1", "replace").decode("latin-1")  # bitmap fonts know latin-1 only
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(tiles: Sequence[SheetTile], layout: Layout | None = None) -> Image.Image:
    if not tiles:
        raise ValueError("a contact sheet needs at least one tile")
    lay = layout or Layout()
    sheet = Image.new("RGB", lay.size(len(tiles)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    face = font(12)
    missing = placeholder(lay.picture)
    for i, tile in enumerate(tiles):
        x = (i % lay.columns) * lay.tile
        y = (i // lay.columns) * (lay.tile + lay.caption)
        picture = tile.picture or missing
        sheet.paste(picture, (x + (lay.tile - picture.width) // 2, y + (lay.tile - picture.height) // 2))
        if tile.highlight:
            draw.rectangle((x + 1, y + 1, x + lay.tile - 2, y + lay.tile - 2), outline=TARGET_FRAME, width=3)
        text_width = lay.tile - 2 * lay.pad
        draw.text((x + lay.pad, y + lay.tile + 3), _fit(draw, tile.title, face, text_width), fill=TEXT, font=face)
        draw.text((x + lay.pad, y + lay.tile + 19), _fit(draw, tile.detail, face, text_width), fill=MUTED, font=face)
    return sheet
