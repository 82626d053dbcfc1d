"""Synthetic data sets at real sizes, written in chunks (1M x 512 float32 is 2 GB).

Photos carry CLIP-shaped vectors (512-d, L2-normalised, Zipf-sized clusters
around a shared offset, as CLIP image embeddings are) and the Unsplash Lite
metadata columns the filters read.  Countries are drawn with fixed shares, so
a country filter keeps a known fraction of the photos: FILTER_COUNTRIES.
Conversions have Unsplash Lite's columns; keywords follow a Zipf law.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DIM = 512
CHUNK = 50_000
# country -> share of photos; filters on these keep 50 %, 10 % and 1 %.
FILTER_COUNTRIES = {"Germany": 0.50, "France": 0.10, "Iceland": 0.01}
URL_PREFIX = "https://images.unsplash.com/photo-"
OTHER_COUNTRIES = ("Japan", "Chile", "Kenya", "Canada", "India", "Peru", "Norway", "Spain")


def photo_ids(n: int) -> pa.Array:
    """Unsplash-like 11-character ids, unique and reproducible."""
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", dtype=np.uint8)
    rng = np.random.default_rng(11)
    chars = alphabet[rng.integers(0, len(alphabet), size=(n, 7))]
    # 4 trailing digits of the row number (base 64) make the ids unique.
    index = np.arange(n)
    tail = np.stack([alphabet[(index >> (6 * i)) & 63] for i in range(4)], axis=1)
    raw = np.concatenate([chars, tail], axis=1).astype(np.uint8).tobytes()
    offsets = pa.py_buffer(np.arange(0, 11 * (n + 1), 11, dtype=np.int32))
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(raw))


class ClipLike:
    """CLIP-shaped vectors, drawn chunk by chunk from one fixed set of clusters."""

    def __init__(self, n: int, dim: int = DIM, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.dim, self.seed = n, dim, seed
        clusters = max(8, n // 150)
        self.centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        self.shared = (rng.standard_normal(dim) * 1.5).astype(np.float32)
        sizes = rng.zipf(1.5, clusters).astype(float)
        self.p = sizes / sizes.sum()

    def chunk(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, start))
        labels = rng.choice(len(self.centres), size=stop - start, p=self.p)
        x = self.shared + self.centres[labels] + 0.8 * rng.standard_normal((stop - start, self.dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.n, size):
            yield start, self.chunk(start, min(self.n, start + size))

    def all(self) -> np.ndarray:
        out = np.empty((self.n, self.dim), dtype=np.float32)
        for start, x in self.chunks():
            out[start : start + len(x)] = x
        return out


class LowRankClipLike(ClipLike):
    """ClipLike's clusters and sizes, with the spread inside a cluster in a few directions.

    ClipLike spreads a cluster's photos isotropically over all 512 dimensions: within
    a cluster every photo is about as near to any other (nearest and 500th
    neighbour differ by 0.02 in cosine, `neighbour_profile`), so no index can find
    the 10 nearest without comparing most of the cluster.  Photo embeddings are
    thought to vary along far fewer directions than they have dimensions (a
    cluster of beach photos varies by light, framing, people...); this variant
    puts 90 % of the same within-cluster variance into RANK directions of the
    cluster's own, the rest isotropic.  It is an assumption, not a measurement of
    real CLIP embeddings (none are reachable here), and is named as such
    wherever a figure uses it.
    """

    RANK = 16
    BASES = 256

    def __init__(self, n: int, dim: int = DIM, seed: int = 1) -> None:
        super().__init__(n, dim, seed)
        rng = np.random.default_rng((seed, 3))
        self.bases = (rng.standard_normal((self.BASES, self.RANK, dim)) / np.sqrt(dim)).astype(np.float32)

    def chunk(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, start, 3))
        m = stop - start
        labels = rng.choice(len(self.centres), size=m, p=self.p)
        # ClipLike's per-photo variance, 0.64 per dimension, 90 % of it in RANK directions
        total = 0.64 * self.dim
        z = rng.standard_normal((m, self.RANK), dtype=np.float32) * np.sqrt(0.9 * total / self.RANK)
        low = np.einsum("mr,mrd->md", z, self.bases[labels % self.BASES])  # basis rows of about unit length
        noise = np.sqrt(0.1 * 0.64) * rng.standard_normal((m, self.dim), dtype=np.float32)
        x = self.shared + self.centres[labels] + low + noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)


def vectors_array(x: np.ndarray) -> pa.ListArray:
    n, dim = x.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(x.reshape(-1), type=pa.float32()))


def _countries(rng: np.random.Generator, n: int) -> pa.Array:
    names = [*FILTER_COUNTRIES, *OTHER_COUNTRIES]
    rest = (1 - sum(FILTER_COUNTRIES.values())) / len(OTHER_COUNTRIES)
    shares = [*FILTER_COUNTRIES.values(), *[rest] * len(OTHER_COUNTRIES)]
    return pa.DictionaryArray.from_arrays(rng.choice(len(names), size=n, p=shares).astype(np.int32), names).cast(
        pa.string()
    )


def write_photos(directory: Path, n: int, *, dim: int = DIM) -> None:
    ids = photo_ids(n)
    vectors = ClipLike(n, dim)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("photo_id", pa.string()),
            ("photo_image_url", pa.string()),
            ("photo_embed", pa.list_(pa.float32())),
            ("photographer_username", pa.string()),
            ("photo_location_country", pa.string()),
            ("photo_submitted_at", pa.string()),
            ("stats_downloads", pa.string()),
        ]
    )
    with pq.ParquetWriter(directory / "photos.parquet", schema) as writer:
        for start, x in vectors.chunks():
            rng = np.random.default_rng((7, start))
            m = len(x)
            chunk_ids = ids[start : start + m]
            days = rng.integers(0, 3650, m).astype("timedelta64[D]") + np.datetime64("2014-01-01")
            writer.write_table(
                pa.table(
                    {
                        "id": pa.array(np.arange(start, start + m, dtype=np.int64)),
                        "photo_id": chunk_ids,
                        "photo_image_url": pc.binary_join_element_wise(URL_PREFIX, chunk_ids, ""),
                        "photo_embed": vectors_array(x),
                        "photographer_username": pa.array([f"user{u}" for u in rng.integers(0, n // 20 + 1, m)]),
                        "photo_location_country": _countries(rng, m),
                        "photo_submitted_at": pc.strftime(pa.array(days.astype("datetime64[s]")), "%Y-%m-%d %H:%M:%S"),
                        "stats_downloads": pa.array(rng.zipf(1.8, m).astype(str)),
                    },
                    schema=schema,
                )
            )


def write_conversions(directory: Path, rows: int, photos: int, *, chunk: int = 1_000_000) -> None:
    """Unsplash Lite's conversions columns; photos and keywords drawn by Zipf laws."""
    ids = photo_ids(photos)
    vocabulary = pa.array([f"keyword {i}" for i in range(20_000)])
    users = pa.array([f"{u:032x}" for u in np.random.default_rng(5).integers(0, 2**62, 200_000)])
    countries = pa.array(["DE", "FR", "US", "IS", "JP", "BR", "IN", "GB"])
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("converted_at", pa.string()),
            ("conversion_type", pa.string()),
            ("keyword", pa.string()),
            ("photo_id", pa.string()),
            ("anonymous_user_id", pa.string()),
            ("conversion_country", pa.string()),
        ]
    )
    with pq.ParquetWriter(directory / "conversions.parquet", schema) as writer:
        for start in range(0, rows, chunk):
            m = min(chunk, rows - start)
            rng = np.random.default_rng((9, start))
            seconds = rng.integers(0, 3650 * 86400, m).astype("timedelta64[s]") + np.datetime64("2014-01-01T00:00:00")
            writer.write_table(
                pa.table(
                    {
                        "id": pa.array(np.arange(start, start + m, dtype=np.int64)),
                        "converted_at": pc.strftime(pa.array(seconds), "%Y-%m-%d %H:%M:%S"),
                        "conversion_type": pa.DictionaryArray.from_arrays(
                            rng.integers(0, 2, m).astype(np.int32), ["download", "view"]
                        ).cast(pa.string()),
                        "keyword": vocabulary.take((rng.zipf(1.3, m) - 1) % len(vocabulary)),
                        "photo_id": ids.take((rng.zipf(1.2, m) - 1) % photos * 7919 % photos),
                        "anonymous_user_id": users.take(rng.integers(0, len(users), m)),
                        "conversion_country": countries.take(rng.integers(0, len(countries), m)),
                    },
                    schema=schema,
                )
            )


def neighbour_profile(
    n: int, queries: int = 200, ranks: tuple[int, ...] = (1, 10, 50, 500), kind: type[ClipLike] = ClipLike
) -> dict[int, float]:
    """Mean cosine similarity of a vector to its r-th nearest other vector, for each rank r.

    How close the 10th nearest is to the 1st says how hard the data is for a graph
    index: near-ties need many candidates (a large ef_search) to be told apart.
    """
    x = kind(n).all()
    sims = x[:queries] @ x.T
    sims[np.arange(queries), np.arange(queries)] = -np.inf
    ordered = -np.sort(-sims, axis=1)
    return {r: float(ordered[:, r - 1].mean()) for r in ranks}


if __name__ == "__main__":
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    for kind in (ClipLike, LowRankClipLike):
        for rank, cosine in neighbour_profile(size, kind=kind).items():
            print(f"{size:,} {kind.__name__} vectors: mean cosine to the nearest #{rank}: {cosine:.3f}")
