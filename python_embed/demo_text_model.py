"""A tiny, randomly initialised multilingual text encoder for offline runs and tests.

The architecture of sentence-transformers/clip-ViT-B-32-multilingual-v1, the
text model trained into openai/clip-vit-base-patch32's image space: a DistilBERT
transformer, mean pooling over the tokens and a dense projection without bias
to 512 dimensions, as a sentence-transformers model.  Its towers are tiny and
its weights random, and its WordPiece vocabulary holds single characters only
(every word of the Latin, Greek and Cyrillic scripts tokenizes): it fits the
demo CLIP model's 512-d space by shape, not by meaning, and anything it
produces must be reported as coming from a demo model.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

from python_embed.demo_model import PROJECTION_DIM

DEMO_TEXT_MODEL_NAME = "bildsuche-demo-multilingual"
DEMO_TEXT_MODEL = "demo"  # what --text-model takes to mean this model
DEMO_TEXT_MARKER = "bildsuche_demo_text_model.json"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# The real model: DistilBERT of 768 dimensions, 6 layers, 12 heads, 3072 hidden; the demo's is tiny.
DIM, LAYERS, HEADS, HIDDEN = 32, 2, 2, 64
MAX_SEQ_LENGTH = 128


def _characters() -> list[str]:
    latin = string.ascii_letters + string.digits + string.punctuation
    accented = "".join(chr(c) for c in range(0xC0, 0x250) if chr(c).isalpha())
    greek = "".join(chr(c) for c in range(0x391, 0x3CA) if chr(c).isalpha())
    cyrillic = "".join(chr(c) for c in range(0x410, 0x450))
    return list(dict.fromkeys(latin + accented + greek + cyrillic))


def is_demo_text_model(path: str | Path) -> bool:
    return (Path(path) / DEMO_TEXT_MARKER).is_file()


def create_demo_text_model(directory: Path, *, seed: int = 0) -> Path:
    """Write the demo text model to ``directory`` (once; an existing one is kept)."""
    directory = Path(directory)
    if is_demo_text_model(directory):
        return directory
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory / ".transformer"
    chars = _characters()
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)])}
    # Cased and with accents, as distilbert-base-multilingual-cased.
    tokenizer = DistilBertTokenizer(vocab=vocab, do_lower_case=False, strip_accents=False)
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(vocab), max_position_embeddings=MAX_SEQ_LENGTH, dim=DIM, n_layers=LAYERS, n_heads=HEADS,
        hidden_dim=HIDDEN,
    )  # fmt: skip
    DistilBertModel(config).eval().save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    modules = [
        Transformer(str(scratch), max_seq_length=MAX_SEQ_LENGTH),
        Pooling(DIM, "mean"),
        Dense(DIM, PROJECTION_DIM, bias=False, activation_function=torch.nn.Identity()),
    ]
    SentenceTransformer(modules=modules, device="cpu").save(str(directory))
    shutil.rmtree(scratch)
    (directory / DEMO_TEXT_MARKER).write_text(
        json.dumps({"name": DEMO_TEXT_MODEL_NAME, "seed": seed, "weights": "random"}), encoding="utf-8"
    )
    return directory
