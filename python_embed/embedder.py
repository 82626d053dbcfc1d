"""CLIP image embeddings through transformers, batched and L2-normalised.

On CPUs with AMX or AVX512-BF16 (and on CUDA) the model runs in bfloat16:
weights and activations, with PyTorch accumulating layer norms, softmax and
matrix products in float32.  benchmarks/embed_throughput.py measures what that
buys and how close the embeddings stay to float32 (docs/benchmarks.md).  Preprocessing is ClipPreprocess,
so it can run in worker threads while the model works on the previous batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from bildsuche.errors import BildsucheError
from python_embed.demo_model import is_demo_model, model_name
from python_embed.preprocess import ClipPreprocess
from python_embed.types import Embeddings

Precision = Literal["auto", "fp32", "bf16"]


class ModelUnavailableError(BildsucheError):
    """The CLIP model could not be loaded."""


def l2_normalise(features: Any) -> Embeddings:
    array = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16 on this CPU (Linux: read from /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def load_preprocess(model: str) -> ClipPreprocess:
    """The model's image preprocessing alone (its processor config; no weights loaded)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # before the import, which warns of a missing torchvision
    from transformers import CLIPImageProcessor

    try:
        processor = CLIPImageProcessor.from_pretrained(model)
    except (OSError, ValueError) as exc:
        hint = "" if Path(model).exists() else " (no network? pass --model with a local CLIP directory)"
        raise ModelUnavailableError(f"cannot load the image processor of CLIP model {model!r}{hint}: {exc}") from exc
    return ClipPreprocess.from_image_processor(processor)


class ClipEmbedder:
    """One loaded CLIP model; ``name`` is what the data records as its model."""

    def __init__(self, model: str, *, device: str | None = None, precision: Precision = "auto") -> None:
        import torch
        from transformers import CLIPModel, CLIPProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.is_demo = is_demo_model(model)
        self.name = model_name(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.processor = CLIPProcessor.from_pretrained(model)
            self.model = CLIPModel.from_pretrained(model).eval().to(self.device)
        except (OSError, ValueError) as exc:
            hint = "" if Path(model).exists() else " (no network? pass --model with a local CLIP directory)"
            raise ModelUnavailableError(f"cannot load CLIP model {model!r}{hint}: {exc}") from exc
        self.dim = int(self.model.config.projection_dim)
        self.preprocess = ClipPreprocess.from_image_processor(self.processor.image_processor)
        if precision == "auto":
            fast = self.device.startswith("cuda") or cpu_has_fast_bf16()
            precision = "bf16" if fast else "fp32"
        self.precision: Precision = precision
        self._dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.model.to(self._dtype)

    def embed_pixels(self, pixels: NDArray[np.float32]) -> Embeddings:
        """Embeddings of a (n, 3, H, W) batch already preprocessed."""
        import torch

        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device, dtype=self._dtype)
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=batch)
        features = getattr(out, "pooler_output", out)
        return l2_normalise(features.float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> Embeddings:
        """CLIP text embeddings of ``texts`` (the same model's text tower), L2-normalised."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.processor.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
        features = getattr(out, "pooler_output", out)
        return l2_normalise(features.float().cpu().numpy())
