"""A tiny, randomly initialised CLIP for offline runs and tests.

Real transformers classes (CLIPModel, CLIPProcessor, CLIPTokenizer) with the
preprocessing and 512-d projection of openai/clip-vit-base-patch32, but small
towers and random weights: its embeddings are deterministic and well formed,
not meaningful.  Anything it produces must be reported as coming from a demo
model.
"""

from __future__ import annotations

import json
from pathlib import Path

DEMO_MODEL_NAME = "bildsuche-demo-clip"
DEMO_MODEL = "demo"  # what --model takes to mean this model
DEMO_MARKER = "bildsuche_demo_model.json"
PROJECTION_DIM = 512


def _byte_alphabet() -> list[str]:
    # GPT-2 style byte-to-unicode table, which CLIPTokenizer expects its vocab in.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def _byte_level_vocab() -> dict[str, int]:
    # Single bytes only and no merges: every text tokenizes, one token a byte.
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}


def is_demo_model(path: str | Path) -> bool:
    return (Path(path) / DEMO_MARKER).is_file()


def model_name(model: str) -> str:
    """What the data records a --model value as: the demo model by its name, anything else as given."""
    return DEMO_MODEL_NAME if is_demo_model(model) else model


# Tower sizes: the demo's tiny towers, or openai/clip-vit-base-patch32's own
# (for benchmarks that must run the real architecture, still with random weights).
ARCHITECTURES = {
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2},
        "vision": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2},
    },
    "vit-b-32": {
        "text": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8},
        "vision": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12},
    },
}


def create_demo_model(directory: Path, *, seed: int = 0, architecture: str = "tiny") -> Path:
    """Write the demo model to ``directory`` (once; an existing one is kept)."""
    directory = Path(directory)
    if is_demo_model(directory):
        return directory
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = CLIPTokenizer(vocab=_byte_level_vocab(), merges=[])
    config = CLIPConfig(
        text_config={
            **ARCHITECTURES[architecture]["text"],
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**ARCHITECTURES[architecture]["vision"], "image_size": 224, "patch_size": 32},
        projection_dim=PROJECTION_DIM,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(
        do_resize=True,
        size={"shortest_edge": 224},
        do_center_crop=True,
        crop_size={"height": 224, "width": 224},
        do_normalize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        do_convert_rgb=True,
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    model.save_pretrained(directory)
    (directory / DEMO_MARKER).write_text(
        json.dumps({"name": DEMO_MODEL_NAME, "seed": seed, "architecture": architecture, "weights": "random"}),
        encoding="utf-8",
    )
    return directory


def resolve_model(name: str) -> str:
    """A --model value as transformers loads it: ``demo`` becomes the demo model's
    directory under the data folder (created on first use), anything else is kept."""
    if name != DEMO_MODEL:
        return name
    from bildsuche import config

    return str(create_demo_model(config.data_dir() / "demo" / "model"))
