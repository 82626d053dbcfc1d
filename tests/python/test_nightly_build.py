"""python_embed build into a folder that holds the data set of an earlier night."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bildsuche.dataset import CACHE_DIR
from build_helpers import assert_same_data_set, night
from imageserver import ImageServer, image_server
from python_embed.build import BuildOptions, BuildReport, build
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import FetchConfig

FETCH = FetchConfig(connect_timeout=2.0, read_timeout=1.0, retries=1, backoff=0.01)


@pytest.fixture()
def server() -> Iterator[ImageServer]:
    with image_server() as srv:
        yield srv


class CountingEmbedder:
    """The demo CLIP, counting the images its model is shown."""

    def __init__(self, model_dir: Path) -> None:
        self.clip = ClipEmbedder(str(model_dir), precision="fp32")
        self.images = 0
        embed = self.clip.embed_pixels

        def counted(pixels: np.ndarray) -> np.ndarray:
            self.images += len(pixels)
            return embed(pixels)

        self.clip.embed_pixels = counted  # type: ignore[method-assign]

    def __call__(self) -> ClipEmbedder:
        return self.clip


def run(source: Path, out: Path, embedder: CountingEmbedder, model: str | None = None) -> BuildReport:
    options = BuildOptions(model=model or "bildsuche-demo-clip", batch_size=4, workers=2, fetch=FETCH)
    return build(str(source), out, embedder, options)


def test_a_second_night_embeds_only_what_changed_and_equals_a_fresh_build(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path
) -> None:
    first = {f"p{i:02d}": server.url("ok", f"p{i:02d}") for i in range(10)} | {"fl": server.url("flaky", "fl")}
    out = tmp_path / "out"
    embedder = CountingEmbedder(demo_model_dir)
    one = run(night(tmp_path / "one.zip", first), out, embedder)
    assert (one.embedded, one.reused, sum(one.failures.values())) == (10, 0, 1)  # fl: 503 twice, retries=1

    second = {pid: url for pid, url in first.items() if pid not in ("p01", "p02")}
    second["p03"] = server.url("ok", "p03-recropped")  # a changed photo: same id, new URL
    second |= {"n1": server.url("ok", "n1"), "n2": server.url("ok", "n2")}
    shutil.rmtree(out / CACHE_DIR)  # reused embeddings need no download, not even from the cache
    hits = dict(server.hits)
    embedder.images = 0
    two = run(night(tmp_path / "two.zip", second), out, embedder)

    assert (two.reused, two.embedded, two.removed, two.retried) == (7, 4, 2, 1)
    assert embedder.images == 4 and two.downloads == 4  # p03's new picture, n1, n2 and fl, tried again
    for pid in ("p00", "p04", "p09"):
        assert server.hits[f"/ok/{pid}"] == hits[f"/ok/{pid}"]
    assert pq.read_table(out / "failures.parquet").num_rows == 0

    fresh = tmp_path / "fresh"
    fresh_embedder = CountingEmbedder(demo_model_dir)
    run(night(tmp_path / "two.zip", second), fresh, fresh_embedder)
    assert fresh_embedder.images == 11
    assert_same_data_set(out, fresh)
    ids = pq.read_table(out / "photos.parquet").column("photo_id").to_pylist()
    assert "p01" not in ids and "p02" not in ids
    for name in ("conversions", "keywords"):
        assert not {"p01", "p02"} & set(pq.read_table(out / f"{name}.parquet").column("photo_id").to_pylist())


def test_another_model_embeds_every_photo_again(tmp_path: Path, server: ImageServer, demo_model_dir: Path) -> None:
    photos = {f"m{i}": server.url("ok", f"m{i}") for i in range(5)}
    source = night(tmp_path / "one.zip", photos)
    out = tmp_path / "out"
    embedder = CountingEmbedder(demo_model_dir)
    run(source, out, embedder)
    embedder.images = 0
    again = run(source, out, embedder, model="another-clip")
    assert (again.reused, again.embedded, embedder.images) == (0, 5, 5)
    assert pq.read_table(out / "photos.parquet").schema.metadata[b"bildsuche.model"] == b"another-clip"


def test_an_unchanged_night_loads_no_model(tmp_path: Path, server: ImageServer, demo_model_dir: Path) -> None:
    source = night(tmp_path / "one.zip", {f"u{i}": server.url("ok", f"u{i}") for i in range(4)})
    out = tmp_path / "out"
    run(source, out, CountingEmbedder(demo_model_dir))
    before = (out / "photos.parquet").read_bytes()

    def no_model() -> ClipEmbedder:
        raise AssertionError("the model was loaded although no photo needs it")

    report = build(str(source), out, no_model, BuildOptions(model="bildsuche-demo-clip", fetch=FETCH))
    assert (report.reused, report.embedded, report.downloads) == (4, 0, 0)
    assert (out / "photos.parquet").read_bytes() == before
