"""CLIP's image preprocessing in numpy, equal to CLIPImageProcessor's.

Shortest side resized to 224 (bicubic, long side truncated as transformers
does), centre crop 224x224, scaled to [0, 1], normalised with CLIP's mean and
std, channels first.  Written out so it runs in worker threads on one image
at a time without the processor's per-call overhead.

Only the region under the crop is resized (Pillow's ``box``, whose filter still
reads the pixels around it), which gives the same pixels as resizing the whole
image and cropping, without the cost: a 1 x 20000 sliver resized whole would
be 224 x 4.5 million pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipPreprocess:
    def __init__(
        self,
        shortest_edge: int = 224,
        crop: tuple[int, int] = (224, 224),
        mean: tuple[float, ...] = CLIP_MEAN,
        std: tuple[float, ...] = CLIP_STD,
        resample: int = Image.Resampling.BICUBIC,
    ) -> None:
        self.shortest_edge = shortest_edge
        self.crop_h, self.crop_w = crop
        self.resample = resample
        std_arr = np.asarray(std, dtype=np.float32)
        # (x / 255 - mean) / std  ==  x * scale - offset
        self.scale = (1.0 / (255.0 * std_arr)).astype(np.float32)
        self.offset = (np.asarray(mean, dtype=np.float32) / std_arr).astype(np.float32)

    @classmethod
    def from_image_processor(cls, processor: Any) -> ClipPreprocess:
        size = dict(processor.size)
        crop = dict(processor.crop_size)
        return cls(
            shortest_edge=int(size.get("shortest_edge") or min(size["height"], size["width"])),
            crop=(int(crop["height"]), int(crop["width"])),
            mean=tuple(processor.image_mean),
            std=tuple(processor.image_std),
            resample=int(processor.resample),
        )

    @property
    def draft_size(self) -> tuple[int, int]:
        """Smallest decode size that loses nothing (JPEG draft mode may decode at 1/2, 1/4, 1/8)."""
        return (self.shortest_edge, self.shortest_edge)

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.shortest_edge * long / short)
        return (self.shortest_edge, new_long) if width <= height else (new_long, self.shortest_edge)

    def __call__(self, image: Image.Image) -> NDArray[np.float32]:
        if image.mode != "RGB":
            image = image.convert("RGB")
        source_w, source_h = image.size
        width, height = self.resized_size(source_w, source_h)
        top, left = (height - self.crop_h) // 2, (width - self.crop_w) // 2
        if top < 0 or left < 0:
            raise ValueError(f"image of {width}x{height} is smaller than the {self.crop_w}x{self.crop_h} crop")
        scale_x, scale_y = width / source_w, height / source_h
        box = (left / scale_x, top / scale_y, (left + self.crop_w) / scale_x, (top + self.crop_h) / scale_y)
        image = image.resize((self.crop_w, self.crop_h), resample=self.resample, box=box)
        pixels = np.asarray(image, dtype=np.float32) * self.scale - self.offset
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))
