"""The tutorial's questions answered directly with numpy: the ground truth for the marts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from datasets_helpers import SyntheticDataset


@dataclass
class Reference:
    neighbours: list[tuple[str, float]]  # (photo_id, cosine distance), nearest first
    downloads: dict[str, int]
    top_candidate: str | None
    keywords: list[tuple[str, int]]


def reference(data: SyntheticDataset, target: str, k: int, top_keywords: int = 10) -> Reference:
    x = data.embeddings.astype(np.float64)
    t = x[data.index(target)]
    dist = 1.0 - (x @ t) / (np.linalg.norm(x, axis=1) * np.linalg.norm(t))
    order = sorted((d, pid) for pid, d in zip(data.photo_ids, dist, strict=True) if pid != target)
    neighbours = [(pid, float(d)) for d, pid in order[:k]]
    per_photo = Counter(pid for pid, _ in data.conversions)
    downloads = {pid: per_photo.get(pid, 0) for pid, _ in neighbours}
    ranked = sorted(((-downloads[pid], rank) for rank, (pid, _) in enumerate(neighbours)))
    top = neighbours[ranked[0][1]][0] if ranked and ranked[0][0] < 0 else None
    keywords: list[tuple[str, int]] = []
    if top is not None:
        counts = Counter(kw.strip().lower() for pid, kw in data.conversions if pid == top)
        keywords = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_keywords]
    return Reference(neighbours, downloads, top, keywords)
