"""Search keywords embedded by the CLIP text tower, for the keyword_search_relevance mart
(seeds_loader.keywords picks the keywords and stores the embeddings)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bildsuche.dataset import KeywordEmbedding
from python_embed.embedder import ClipEmbedder

BATCH = 256

__all__ = ["BATCH", "KeywordEmbedding", "embed_keywords"]


def embed_keywords(
    embedder: ClipEmbedder, keywords: Sequence[str], progress: Callable[[int, int], None] | None = None
) -> list[KeywordEmbedding]:
    """``keywords`` embedded as they are (no prompt template: a user typed them), in batches."""
    out: list[KeywordEmbedding] = []
    for start in range(0, len(keywords), BATCH):
        batch = keywords[start : start + BATCH]
        vectors = embedder.embed_texts(batch)
        out += [KeywordEmbedding(embedder.name, kw, v.tolist()) for kw, v in zip(batch, vectors, strict=True)]
        if progress:
            progress(len(out), len(keywords))
    return out
