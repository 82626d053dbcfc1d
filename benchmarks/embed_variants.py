"""The image tower alone in several precisions and batch sizes: images/s and how close to float32.

CLIP ViT-B/32's architecture with random weights (python_embed.demo_model; the
hub is not reachable here), on random 224 px inputs already preprocessed, so
that only the model's arithmetic is timed.  Variants, run in turn, each
--repeats times: float32, bfloat16 (weights and activations; what python_embed
runs on CPUs with AVX512-BF16) at several batch sizes, and int8 dynamic
quantization of the Linear layers (torch.ao; activations quantized per batch,
the rest float32).  Cosines are to the float32 embeddings, plain and centred
on their mean (random weights put every embedding near one direction; the
centred cosine compares what differs between images).

    python benchmarks/embed_variants.py --images 128 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from measure import machine
from transformers import CLIPModel

from python_embed.demo_model import create_demo_model


def features(model: Any, pixels: torch.Tensor, dtype: torch.dtype, batch: int) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch):
            f = model.get_image_features(pixel_values=pixels[start : start + batch].to(dtype))
            out.append(getattr(f, "pooler_output", f).float())
    array = torch.cat(out).numpy()
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--architecture", default="vit-b-32", choices=("vit-b-32", "tiny"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # torch.ao's deprecation notice
    print(machine(), flush=True)
    model_dir = create_demo_model(
        Path(tempfile.mkdtemp(prefix="bildsuche-variants-")) / "m", architecture=args.architecture
    )
    base = CLIPModel.from_pretrained(model_dir).eval()
    pixels = torch.from_numpy(np.random.default_rng(0).standard_normal((args.images, 3, 224, 224), dtype=np.float32))
    reference = features(base, pixels, torch.float32, 32)
    bf16 = copy.deepcopy(base).to(torch.bfloat16)
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(base), {torch.nn.Linear}, dtype=torch.qint8)
    variants = {
        "fp32, batch 32": (base, torch.float32, 32),
        "bf16, batch 16": (bf16, torch.bfloat16, 16),
        "bf16, batch 32 (python_embed)": (bf16, torch.bfloat16, 32),
        "bf16, batch 64": (bf16, torch.bfloat16, 64),
        "int8 dynamic, batch 32": (int8, torch.float32, 32),
    }
    centre = reference.mean(axis=0)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cosines: dict[str, tuple[float, float]] = {}
    for name, (model, dtype, batch) in variants.items():  # warm-up; the cosines
        got = features(model, pixels, dtype, batch)
        a, b = reference - centre, got - centre
        centred = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        cosines[name] = (float(np.sum(reference * got, axis=1).min()), float(centred.min()))
    for _ in range(args.repeats):
        for name, (model, dtype, batch) in variants.items():
            started = time.perf_counter()
            features(model, pixels, dtype, batch)
            rates[name].append(len(pixels) / (time.perf_counter() - started))
    fp32 = statistics.median(rates["fp32, batch 32"])
    print(f"\n{args.images} images, {args.architecture}, medians of {args.repeats}")
    print("| variant | images/s | runs | vs fp32 | cosine min | centred cosine min |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, runs in rates.items():
        rate = statistics.median(runs)
        print(f"| {name} | {rate:.1f} | {', '.join(f'{r:.1f}' for r in runs)} | {rate / fp32:.2f}x"
              f" | {cosines[name][0]:.5f} | {cosines[name][1]:.5f} |")  # fmt: skip


if __name__ == "__main__":
    main()
