"""Text encoders for text searches: a CLIP model's own text tower, or a text model trained into
a CLIP model's image space, such as the multilingual
sentence-transformers/clip-ViT-B-32-multilingual-v1 (loaded with sentence-transformers).

A text embedding can be compared with the photos only when its encoder was trained into the
space of the model that embedded the photos.  Which text model fits which image model is data,
the dbt seed text_model_fits.csv (dbt documents it and a dbt test checks saved searches against
it); a text model it does not pair with the photos' model is refused by name before anything is
loaded.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bildsuche import config
from bildsuche.errors import EmbeddingModelMismatchError, InputDataError
from python_embed.demo_text_model import (
    DEMO_TEXT_MODEL,
    DEMO_TEXT_MODEL_NAME,
    create_demo_text_model,
    is_demo_text_model,
)
from python_embed.embedder import ModelUnavailableError, l2_normalise
from python_embed.types import Embeddings

FITS_SEED = "text_model_fits.csv"


class TextEncoder(Protocol):
    """Anything that embeds texts into an image model's space; ``name`` is recorded with them."""

    name: str

    def embed_texts(self, texts: Sequence[str]) -> Embeddings: ...


@dataclass(frozen=True)
class Fit:
    text_model: str
    image_model: str
    languages: str
    note: str


def read_fits(path: Path | None = None) -> list[Fit]:
    """The rows of text_model_fits.csv (the project's seed unless ``path`` is given)."""
    path = path or config.seed_file(FITS_SEED)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [
                Fit(row["text_model"].strip(), row["image_model"].strip(), row["languages"], row["note"])
                for row in csv.DictReader(handle)
            ]
    except (OSError, KeyError, csv.Error, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: not a readable table of text models and image models ({exc})") from exc


def text_model_name(model: str) -> str:
    """What a --text-model value is recorded as: the demo text model by its name, anything else as given."""
    return DEMO_TEXT_MODEL_NAME if is_demo_text_model(model) else model


def check_fit(text_model: str, image_model: str, fits: Sequence[Fit] | None = None) -> None:
    """Raise EmbeddingModelMismatchError, naming both models, unless ``text_model`` (a name, see
    text_model_name) was trained into ``image_model``'s space."""
    fits = read_fits() if fits is None else fits
    spaces = [f.image_model for f in fits if f.text_model == text_model]
    if image_model in spaces:
        return
    if spaces:
        raise EmbeddingModelMismatchError(
            f"text model {text_model} embeds into the space of {', '.join(spaces)}, not of {image_model}: "
            f"its searches cannot be compared with photos embedded by {image_model}; search with "
            f"{image_model}'s own text tower (leave out --text-model) or embed the photos with {spaces[0]}"
        )
    raise EmbeddingModelMismatchError(
        f"text model {text_model} is not known to fit {image_model} (or any image model): "
        f"seeds/{FITS_SEED} lists which text models were trained into which image model's space; "
        "add a row there if this one was"
    )


def resolve_text_model(name: str) -> str:
    """A --text-model value as sentence-transformers loads it: ``demo`` becomes the demo text
    model's directory under the data folder (created on first use), anything else is kept."""
    if name != DEMO_TEXT_MODEL:
        return name
    return str(create_demo_text_model(config.data_dir() / "demo" / "text-model"))


class SentenceTransformerEncoder:
    """A sentence-transformers text model; embeddings L2-normalised, as the photos' are."""

    def __init__(self, model: str, *, device: str | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.name = text_model_name(model)
        self.is_demo = self.name == DEMO_TEXT_MODEL_NAME
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.model = SentenceTransformer(model, device=device)
        except (OSError, ValueError) as exc:
            hint = "" if Path(model).exists() else " (no network? the model must be in the Hugging Face cache)"
            raise ModelUnavailableError(f"cannot load text model {model!r}{hint}: {exc}") from exc
        self.model.eval()

    def embed_texts(self, texts: Sequence[str]) -> Embeddings:
        vectors = self.model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)
        return l2_normalise(vectors)
