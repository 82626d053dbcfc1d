"""Embedding throughput: bildsuche's pipeline against the tutorial's approach.

Both embed the same thumbnails (the built-in sample's pictures saved as the
CDN serves them: JPEG, 200 px wide, q=75) with the same model architecture,
CLIP ViT-B/32 (random weights: the hub is not reachable here; the work per
image is the real model's).

- tutorial: one image at a time, CLIPProcessor then get_image_features, float32;
- bildsuche: python_embed's pipeline: decode and preprocess in worker threads,
  batches, bfloat16 autocast where the CPU has AMX / AVX512-BF16.

Runs alternate (tutorial, bildsuche, tutorial, ...) so both see the same
machine state; medians are reported, with the cosine similarity between the
two embeddings of each image (plain, and centred on the mean embedding).

    python benchmarks/embed_throughput.py --images 256 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from python_embed.demo_model import create_demo_model
from python_embed.embedder import ClipEmbedder, cpu_has_fast_bf16
from python_embed.pipeline import embed_all
from python_embed.sample import generate_sample
from python_embed.types import PhotoSource


def thumbnails(work: Path, count: int) -> list[PhotoSource]:
    sample = generate_sample(work / "sample", photos=count)
    out = work / "thumbs"
    out.mkdir(exist_ok=True)
    sources = []
    for photo in sample.photos:
        with Image.open(photo.path) as img:
            img = img.convert("RGB")
            img.thumbnail((200, 10_000))
            path = out / f"{photo.photo_id}.jpg"
            img.save(path, "JPEG", quality=75)
        sources.append(PhotoSource(photo.photo_id, path.as_uri(), str(path)))
    return sources


def tutorial_way(model: CLIPModel, processor: CLIPProcessor, sources: list[PhotoSource]) -> np.ndarray:
    rows = []
    for source in sources:
        image = Image.open(source.path)
        inputs = processor(images=image, return_tensors="pt")
        with torch.no_grad():
            features = model.get_image_features(**inputs)
        features = getattr(features, "pooler_output", features)
        rows.append((features / features.norm(dim=-1, keepdim=True))[0].numpy())
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--architecture", default="vit-b-32", choices=("vit-b-32", "tiny"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bildsuche-bench-") as tmp:
        work = Path(tmp)
        sources = thumbnails(work, args.images)
        model_dir = create_demo_model(work / "model", architecture=args.architecture)
        model = CLIPModel.from_pretrained(model_dir).eval()
        processor = CLIPProcessor.from_pretrained(model_dir)
        embedder = ClipEmbedder(str(model_dir), precision=args.precision)
        # Warm-up of both paths (first calls allocate and pick kernels).
        tutorial_way(model, processor, sources[:4])
        embed_all(sources[: args.batch_size], embedder, batch_size=args.batch_size, workers=args.workers)

        tutorial_rates, ours_rates = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            reference = tutorial_way(model, processor, sources)
            tutorial_rates.append(len(sources) / (time.perf_counter() - started))
            started = time.perf_counter()
            result = embed_all(sources, embedder, batch_size=args.batch_size, workers=args.workers)
            ours_rates.append(len(sources) / (time.perf_counter() - started))
        assert [p.photo_id for p in result.photos] == [s.photo_id for s in sources]
        cosines = np.sum(reference * result.embeddings, axis=1)
        # Random weights put every embedding near one shared direction, which flatters
        # the plain cosine; with that direction removed the comparison is a strict one.
        centre = reference.mean(axis=0)
        a, b = reference - centre, result.embeddings - centre
        centred = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, fast bf16: {cpu_has_fast_bf16()}",
        "torch": torch.__version__,
        "architecture": args.architecture,
        "images": len(sources),
        "precision": embedder.precision,
        "tutorial_images_per_s": round(statistics.median(tutorial_rates), 2),
        "bildsuche_images_per_s": round(statistics.median(ours_rates), 2),
        "speedup": round(statistics.median(ours_rates) / statistics.median(tutorial_rates), 2),
        "runs_tutorial": [round(r, 2) for r in tutorial_rates],
        "runs_bildsuche": [round(r, 2) for r in ours_rates],
        "cosine_min": round(float(cosines.min()), 5),
        "cosine_mean": round(float(cosines.mean()), 5),
        "centred_cosine_min": round(float(centred.min()), 5),
        "centred_cosine_median": round(float(np.median(centred)), 5),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
