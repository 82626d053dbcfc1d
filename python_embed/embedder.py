"""CLIP image embeddings through transformers, batched and L2-normalised."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bildsuche.errors import BildsucheError
from python_embed.demo_model import DEMO_MODEL_NAME, is_demo_model
from python_embed.types import Embeddings


class ModelUnavailableError(BildsucheError):
    """The CLIP model could not be loaded."""


def l2_normalise(features: Any) -> Embeddings:
    array = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class ClipEmbedder:
    """One loaded CLIP model; ``name`` is what the data records as its model."""

    def __init__(self, model: str, *, device: str | None = None) -> None:
        import torch
        from transformers import CLIPModel, CLIPProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.is_demo = is_demo_model(model)
        self.name = DEMO_MODEL_NAME if self.is_demo else model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.processor = CLIPProcessor.from_pretrained(model)
            self.model = CLIPModel.from_pretrained(model).eval().to(self.device)
        except (OSError, ValueError) as exc:
            hint = "" if Path(model).exists() else (" (no network? pass --model with a local CLIP directory)")
            raise ModelUnavailableError(f"cannot load CLIP model {model!r}{hint}: {exc}") from exc
        self.dim = int(self.model.config.projection_dim)

    def embed_images(self, images: Sequence[Image.Image]) -> Embeddings:
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        inputs = self.processor(images=list(images), return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device)
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels)
        features = getattr(out, "pooler_output", out)
        return l2_normalise(features.float().cpu().numpy())
