"""Build the data set files from a source: a folder of images or the built-in sample."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bildsuche.errors import UsageError
from python_embed.embedder import ClipEmbedder
from python_embed.pipeline import Progress, embed_sources
from python_embed.sample import generate_sample
from python_embed.types import Conversion, PhotoSource
from python_embed.writer import write_dataset

SAMPLE_SOURCE = "sample"


@dataclass
class BuildReport:
    out: Path
    model: str
    model_is_demo: bool
    embedded: int
    failed: int
    conversions: int


def read_source(source: str, work_dir: Path) -> tuple[list[PhotoSource], list[Conversion]]:
    """Photos (and conversions, where the source has them) of ``source``."""
    if source == SAMPLE_SOURCE:
        sample = generate_sample(work_dir / "sample-images")
        return sample.photos, sample.conversions
    path = Path(source)
    if path.is_dir():
        from python_embed.folder import scan_folder

        return scan_folder(path), []
    raise UsageError(f"unknown source {source!r}: give a folder of images or {SAMPLE_SOURCE!r}")


def build(
    source: str,
    out: Path,
    embedder: ClipEmbedder,
    *,
    limit: int | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> BuildReport:
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be positive, got {limit}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {batch_size}")
    photos, conversions = read_source(source, Path(out))
    photos = photos[:limit] if limit else photos
    result = embed_sources(photos, embedder, batch_size=batch_size, progress=progress)
    write_dataset(Path(out), result.photos, result.embeddings, embedder.name, conversions, result.failures)
    embedded_ids = {p.photo_id for p in result.photos}
    return BuildReport(
        out=Path(out),
        model=embedder.name,
        model_is_demo=embedder.is_demo,
        embedded=len(result.photos),
        failed=len(result.failures),
        conversions=sum(1 for c in conversions if c.photo_id in embedded_ids),
    )
