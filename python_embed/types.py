"""Rows and arrays passed between the stages of python_embed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

Embeddings: TypeAlias = NDArray[np.float32]
"""(n, dim) float32, every row of unit L2 norm."""


@dataclass(frozen=True)
class PhotoSource:
    """A photo to embed: where its pixels are, and what to call it."""

    photo_id: str
    photo_image_url: str
    path: str


@dataclass(frozen=True)
class Failure:
    photo_id: str
    url: str
    stage: str
    reason: str


@dataclass(frozen=True)
class Conversion:
    photo_id: str
    keyword: str
