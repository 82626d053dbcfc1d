"""python_embed build: Unsplash Lite zips, the tutorial's parquet and folders, over a faulty loopback CDN."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from bildsuche.dbt import run_dbt
from bildsuche.store import client_for
from build_helpers import FAST_FETCH, FAULTS, GOOD, interrupt_after, unsplash_zip
from imageserver import ImageServer, image_server
from python_embed.build import CACHE_DIR, BuildOptions, build, stable_ids
from python_embed.checkpoint import Checkpoint
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import thumbnail_url
from seeds_loader import load


@pytest.fixture()
def server() -> Iterator[ImageServer]:
    with image_server() as srv:
        srv.slow_seconds = 1.5
        yield srv


def embedder_factory(model_dir: Path) -> ClipEmbedder:
    return ClipEmbedder(str(model_dir))


def test_unsplash_zip_build_accounts_for_every_photo(tmp_path: Path, server: ImageServer, demo_model_dir: Path) -> None:
    urls = unsplash_zip(tmp_path / "lite.zip", server)
    out = tmp_path / "out"
    report = build(
        str(tmp_path / "lite.zip"), out, lambda: embedder_factory(demo_model_dir), BuildOptions(fetch=FAST_FETCH)
    )

    photos = pq.read_table(out / "photos.parquet")
    embedded = photos.column("photo_id").to_pylist()
    assert embedded == [*GOOD, "flaky1", "busy1"]  # source order; retried faults recovered
    # No id in the source: one derived from photo_id, so a photo keeps it from build to build.
    assert photos.column("id").to_pylist() == stable_ids(embedded)
    assert photos.schema.field("photo_embed").type == pa.list_(pa.float32())
    assert photos.column("photo_description").to_pylist()[0] == "two\nlines\tand a tab"
    assert photos.column("photo_image_url").to_pylist()[0] == urls["good00"]  # stray spaces trimmed
    assert {"photo_featured", "stats_downloads", "photo_url"} <= set(photos.column_names)

    failures = {r["photo_id"]: r for r in pq.read_table(out / "failures.parquet").to_pylist()}
    assert set(failures) | set(embedded) == set(urls)
    assert not set(failures) & set(embedded)
    for pid, (_, stage, reason) in FAULTS.items():
        assert failures[pid]["stage"] == stage, failures[pid]
        assert failures[pid]["reason"].startswith(reason), failures[pid]
    assert failures["badurl"]["reason"].startswith("bad_url")
    assert report.failures["fetch:http_404"] == 1 and sum(report.failures.values()) == len(failures)

    conversions = pq.read_table(out / "conversions.parquet")
    assert set(conversions.column("photo_id").to_pylist()) == set(embedded)
    assert conversions.num_rows == 2 * len(embedded)
    assert {"converted_at", "conversion_type", "anonymous_user_id", "conversion_country", "id"} <= set(
        conversions.column_names
    )
    assert set(conversions.column("keyword").to_pylist()) == {"Sky", "tree"}
    assert set(pq.read_table(out / "keywords.parquet").column("photo_id").to_pylist()) == set(embedded)
    assert not (out / ".bildsuche-build").exists()

    # A second build downloads none of the photos it has (failed ones are tried again).
    before = dict(server.hits)
    again = build(
        str(tmp_path / "lite.zip"), out, lambda: embedder_factory(demo_model_dir), BuildOptions(fetch=FAST_FETCH)
    )
    assert again.downloads == 0
    for path in [f"/ok/{pid}" for pid in GOOD] + ["/flaky/flaky1", "/busy/busy1"]:
        assert server.hits[path] == before[path]
    assert server.hits["/404/gone"] > before["/404/gone"]
    assert pq.read_table(out / "photos.parquet").equals(photos)


def test_embeddings_equal_direct_clip_on_the_downloaded_thumbnail(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path
) -> None:
    unsplash_zip(tmp_path / "lite.zip", server)
    out = tmp_path / "out"
    build(
        str(tmp_path / "lite.zip"),
        out,
        lambda: embedder_factory(demo_model_dir),
        BuildOptions(fetch=FAST_FETCH, limit=4),
    )
    photos = pq.read_table(out / "photos.parquet").to_pylist()
    model = CLIPModel.from_pretrained(demo_model_dir).eval()
    processor = CLIPProcessor.from_pretrained(demo_model_dir)
    for row in photos:
        from python_embed.fetch import ImageCache

        cached = ImageCache(out / CACHE_DIR).get(thumbnail_url(row["photo_image_url"]))
        assert cached is not None
        with Image.open(cached) as img:
            inputs = processor(images=img.convert("RGB"), return_tensors="pt")
        with torch.inference_mode():
            direct = model.get_image_features(**inputs).pooler_output[0].numpy()
        ours = np.asarray(row["photo_embed"], dtype=np.float32)
        cosine = float(direct @ ours / (np.linalg.norm(direct) * np.linalg.norm(ours)))
        assert cosine >= 0.995


def test_interrupted_build_resumes_without_downloading_or_embedding_twice(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsplash_zip(tmp_path / "lite.zip", server)
    options = BuildOptions(fetch=FAST_FETCH, batch_size=4, workers=2)
    reference_out = tmp_path / "reference"
    build(str(tmp_path / "lite.zip"), reference_out, lambda: embedder_factory(demo_model_dir), options)
    reference = pq.read_table(reference_out / "photos.parquet")

    out = tmp_path / "out"
    interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        build(str(tmp_path / "lite.zip"), out, lambda: embedder_factory(demo_model_dir), options)
    assert not (out / "photos.parquet").exists()
    first = Checkpoint(out, "bildsuche-demo-clip", str(tmp_path / "lite.zip")).done_ids()
    assert len(first) == 8

    embedded_again: list[int] = []
    real_embed = ClipEmbedder.embed_pixels

    def counting(self: ClipEmbedder, pixels: np.ndarray) -> np.ndarray:
        embedded_again.append(len(pixels))
        return real_embed(self, pixels)

    monkeypatch.setattr(ClipEmbedder, "embed_pixels", counting)
    before = dict(server.hits)
    report = build(str(tmp_path / "lite.zip"), out, lambda: embedder_factory(demo_model_dir), options)
    assert report.resumed == 8
    assert sum(embedded_again) == 14 - 8
    for pid in first:
        assert server.hits[f"/ok/{pid}"] == before.get(f"/ok/{pid}", 0)  # nothing fetched again
    resumed = pq.read_table(out / "photos.parquet")
    assert resumed.column("photo_id").to_pylist() == reference.column("photo_id").to_pylist()
    np.testing.assert_allclose(
        np.array(resumed.column("photo_embed").to_pylist()),
        np.array(reference.column("photo_embed").to_pylist()),
        atol=1e-6,
    )


def test_other_model_on_an_unfinished_build_is_refused(tmp_path: Path) -> None:
    from bildsuche.errors import UsageError

    Checkpoint(tmp_path, "model-a", "src")
    with pytest.raises(UsageError, match="unfinished build"):
        Checkpoint(tmp_path, "model-b", "src")
    Checkpoint(tmp_path, "model-b", "src", restart=True)


def test_tutorial_parquet_keeps_its_embeddings(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5, 512))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pq.write_table(
        pa.table(
            {
                "id": pa.array([10, 11, 12, 13, 14], pa.int64()),
                "photo_id": [f"t{i}" for i in range(5)],
                "photo_image_url": [f"https://images.example/t{i}" for i in range(5)],
                "photo_embed": pa.array(vectors.tolist(), pa.list_(pa.float64())),
            }
        ),
        tmp_path / "photos-all.parquet",
    )
    pq.write_table(
        pa.table({"id": [1, 2], "photo_id": ["t1", "nope"], "keyword": ["a", "b"]}),
        tmp_path / "conversions-all.parquet",
    )

    def no_model() -> ClipEmbedder:
        raise AssertionError("no photo needs embedding")

    out = tmp_path / "out"
    report = build(str(tmp_path / "photos-all.parquet"), out, no_model)
    photos = pq.read_table(out / "photos.parquet")
    assert report.precomputed == 5 and report.model == "openai/clip-vit-base-patch32"
    assert photos.column("id").to_pylist() == [10, 11, 12, 13, 14]
    assert photos.schema.field("photo_embed").type == pa.list_(pa.float32())
    np.testing.assert_allclose(np.array(photos.column("photo_embed").to_pylist()), vectors, rtol=1e-6)
    assert pq.read_table(out / "conversions.parquet").to_pylist() == [{"id": 1, "photo_id": "t1", "keyword": "a"}]


@pytest.mark.slow
def test_build_then_load_then_dbt_build(tmp_path: Path, server: ImageServer, demo_model_dir: Path) -> None:
    unsplash_zip(tmp_path / "lite.zip", server)
    out = tmp_path / "out"
    build(str(tmp_path / "lite.zip"), out, lambda: embedder_factory(demo_model_dir), BuildOptions(fetch=FAST_FETCH))
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        report = load(client, out)
    assert report.rows == {"photos": 14, "conversions": 28, "keywords": 14}
    with client_for("embedded", path=store) as client:
        columns = dict(
            client.query(
                "SELECT name, type FROM system.columns WHERE database = 'raw' AND table = 'photos'"
            ).result_rows
        )
        assert columns["photo_description"] == "Nullable(String)" and columns["photo_embed"] == "Array(Float32)"
        sql = "SELECT photo_description FROM raw.photos WHERE photo_id = 'good00'"
        assert client.query(sql).result_rows == [("two\nlines\tand a tab",)]
        assert client.command("SELECT count() FROM raw.conversions WHERE conversion_country = 'DE'") == 28
    run_dbt(["build"], db_path=store, dbt_vars={"target_photo_id": "good03", "top_k": 5}, quiet=True)
    with client_for("embedded", path=store) as client:
        assert client.command("SELECT count() FROM analytics.top_k_neighbours") == 5
        assert client.command("SELECT sum(downloads) FROM analytics.conversions_per_candidate") == 10


def test_killed_build_resumes_without_downloading_finished_photos(
    tmp_path: Path, server: ImageServer, demo_model_dir: Path
) -> None:
    import os
    import signal
    import time

    ids = [f"k{i:03d}" for i in range(80)]
    photos = "photo_id\tphoto_image_url\n" + "".join(f"{pid}\t{server.url('okslow', pid)}\n" for pid in ids)
    with zipfile.ZipFile(tmp_path / "lite.zip", "w") as zf:
        zf.writestr("lite/photos.tsv000", photos)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "python_embed",
        "build",
        str(tmp_path / "lite.zip"),
        "--out",
        str(out),
        "--model",
        str(demo_model_dir),
        "--batch-size",
        "4",
        "--concurrency",
        "2",
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / ".bildsuche-build"
    deadline = time.monotonic() + 120
    while len(list(state.glob("shard-*.parquet"))) < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert not (out / "photos.parquet").exists(), "the build finished before it could be killed"
    done = Checkpoint(out, "bildsuche-demo-clip", str(tmp_path / "lite.zip")).done_ids()
    assert 12 <= len(done) < len(ids)
    before = dict(server.hits)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done)} from an earlier run" in rerun.stdout
    for pid in done:
        assert server.hits[f"/okslow/{pid}"] == before[f"/okslow/{pid}"] == 1
    table = pq.read_table(out / "photos.parquet")
    assert table.column("photo_id").to_pylist() == ids
    assert pq.read_table(out / "failures.parquet").num_rows == 0


def test_folder_build_names_photos_by_relative_path(tmp_path: Path, demo_model_dir: Path) -> None:
    folder = tmp_path / "pictures"
    (folder / "trip").mkdir(parents=True)
    Image.new("RGB", (300, 200), "orange").save(folder / "trip" / "beach.jpg")
    Image.new("RGBA", (120, 240), (0, 0, 255, 128)).save(folder / "logo.png")
    (folder / "fake.jpg").write_bytes(b"GIF89a not really")
    out = tmp_path / "out"
    report = build(str(folder), out, lambda: embedder_factory(demo_model_dir))
    assert pq.read_table(out / "photos.parquet").column("photo_id").to_pylist() == ["logo", "trip/beach"]
    assert pq.read_table(out / "failures.parquet").select(["photo_id", "stage"]).to_pylist() == [
        {"photo_id": "fake", "stage": "decode"}
    ]
    assert report.conversions == 0 and not (out / "conversions.parquet").exists()


def test_hub_source_offline_is_a_clear_error(tmp_path: Path) -> None:
    from bildsuche.errors import InputDataError

    with pytest.raises(InputDataError, match="cannot read myscale/unsplash-examples from the Hugging Face hub"):
        build("hf:myscale/unsplash-examples", tmp_path / "out", lambda: None)  # type: ignore[arg-type,return-value]


def test_ray_option_without_ray_is_a_clear_error(tmp_path: Path) -> None:
    # As where the extra is not installed: `import ray` fails.
    code = "import sys; sys.modules['ray'] = None; from bildsuche.cli import main; sys.exit(main(sys.argv[1:]))"
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", code, "build", "sample:4", "--out", str(out), "--model", "demo", "--ray"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "--ray needs Ray Data" in done.stderr and "pip install '.[ray]'" in done.stderr
    assert "Traceback" not in done.stderr and not (out / "photos.parquet").exists()
