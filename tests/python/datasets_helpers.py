"""Synthetic data sets in the tutorial's parquet schema, with numpy ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from bildsuche.dataset import MODEL_METADATA_KEY
from bildsuche.dbt import environment, run_dbt
from bildsuche.store import client_for
from seeds_loader import load

FLOAT32 = pa.float32()
SYNTHETIC_MODEL = "synthetic-clip"
KEYWORDS = ("Sunset", "sky ", " ocean", "forest", "city", "snow", "night", "flower", "dog", "cat")


@dataclass
class SyntheticDataset:
    directory: Path
    photo_ids: list[str]
    embeddings: NDArray[np.float32]
    conversions: list[tuple[str, str]]  # (photo_id, keyword) as written

    def index(self, photo_id: str) -> int:
        return self.photo_ids.index(photo_id)


def clustered_embeddings(n: int, dim: int, rng: np.random.Generator, clusters: int = 12) -> NDArray[np.float32]:
    centres = rng.standard_normal((clusters, dim))
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + 0.6 * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def photos_table(photo_ids: list[str], embeddings: np.ndarray, value_type: pa.DataType = FLOAT32) -> pa.Table:
    n, dim = embeddings.shape
    flat = pa.array(embeddings.reshape(-1).astype(value_type.to_pandas_dtype()), type=value_type)
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    return pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "photo_id": pa.array(photo_ids, type=pa.string()),
            "photo_image_url": pa.array([f"https://images.example/{i}" for i in range(n)], type=pa.string()),
            "photo_embed": pa.ListArray.from_arrays(offsets, flat),
        }
    )


def conversions_table(rows: list[tuple[str, str]]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(np.arange(len(rows), dtype=np.int64)),
            "photo_id": pa.array([r[0] for r in rows], type=pa.string()),
            "keyword": pa.array([r[1] for r in rows], type=pa.string()),
        }
    )


def write_synthetic(
    directory: Path,
    *,
    n: int = 240,
    dim: int = 512,
    seed: int = 3,
    extra_ids: tuple[str, ...] = (),
    value_type: pa.DataType = FLOAT32,
    model: str | None = SYNTHETIC_MODEL,
) -> SyntheticDataset:
    """A data set under ``directory``; ``model`` is recorded in photos.parquet as python_embed records it."""
    rng = np.random.default_rng(seed)
    photo_ids = [f"-p{i:04d}" if i % 17 == 0 else f"p{i:04d}" for i in range(n - len(extra_ids))] + list(extra_ids)
    embeddings = clustered_embeddings(n, dim, rng)
    conversions: list[tuple[str, str]] = []
    for pid in photo_ids:
        count = 0 if rng.random() < 0.2 else int(rng.geometric(0.08))
        weights = rng.dirichlet(np.ones(len(KEYWORDS)) * 0.5)
        for k in rng.choice(len(KEYWORDS), size=count, p=weights):
            conversions.append((pid, KEYWORDS[k]))
    order = rng.permutation(len(conversions))
    conversions = [conversions[i] for i in order]
    directory.mkdir(parents=True, exist_ok=True)
    photos = photos_table(photo_ids, embeddings, value_type)
    if model is not None:
        photos = photos.replace_schema_metadata({MODEL_METADATA_KEY: model.encode()})
    pq.write_table(photos, directory / "photos.parquet")
    pq.write_table(conversions_table(conversions), directory / "conversions.parquet")
    return SyntheticDataset(directory, photo_ids, embeddings, conversions)


def built_store(root: Path, data: SyntheticDataset, dbt_vars: dict[str, object]) -> Path:
    """``data`` loaded into a new embedded store under ``root``, then `dbt build` on it.

    dbt's target and log folders go under ``root`` too: module-scoped fixtures
    run outside the per-test environment.
    """
    store = root / "store"
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
    with environment({"DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs")}):
        run_dbt(["build"], db_path=store, dbt_vars=dbt_vars, quiet=True)
    return store
