"""python_embed with the tiny local CLIP: real transformers classes, no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from bildsuche.dataset import MODEL_METADATA_KEY
from python_embed.build import BuildOptions, build
from python_embed.demo_model import create_demo_model, is_demo_model
from python_embed.embedder import ClipEmbedder, ModelUnavailableError
from python_embed.folder import scan_folder
from python_embed.pipeline import embed_all
from python_embed.sample import generate_sample
from python_embed.types import PhotoSource


def test_demo_model_is_a_real_clip_with_512_d_projection(demo_model_dir: Path) -> None:
    assert is_demo_model(demo_model_dir)
    model = CLIPModel.from_pretrained(demo_model_dir)
    assert model.config.projection_dim == 512
    processor = CLIPProcessor.from_pretrained(demo_model_dir)
    tokens = processor(text=["a photo of a dog"], return_tensors="pt", padding=True)
    assert tokens["input_ids"].shape[1] > 3
    # Creating it again keeps the existing one.
    before = (demo_model_dir / "model.safetensors").stat().st_mtime_ns
    create_demo_model(demo_model_dir)
    assert (demo_model_dir / "model.safetensors").stat().st_mtime_ns == before


def test_embeddings_equal_a_direct_clip_computation(tmp_path: Path, demo_model_dir: Path) -> None:
    sample = generate_sample(tmp_path / "imgs", photos=12)
    embedder = ClipEmbedder(str(demo_model_dir))
    result = embed_all(sample.photos, embedder, batch_size=5)
    assert result.embeddings.shape == (12, 512)
    assert result.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)

    model = CLIPModel.from_pretrained(demo_model_dir).eval()
    processor = CLIPProcessor.from_pretrained(demo_model_dir)
    for i, photo in enumerate(result.photos):
        with Image.open(photo.path) as img:
            inputs = processor(images=img.convert("RGB"), return_tensors="pt")
        with torch.inference_mode():
            direct = model.get_image_features(**inputs).pooler_output[0].numpy()
        direct = direct / np.linalg.norm(direct)
        assert float(direct @ result.embeddings[i]) >= 0.995


def _shapes(folder: Path) -> list[Path]:
    """Images of the shapes and modes photos come in: landscape, portrait, square, grey, alpha."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h, mode) in enumerate([(640, 480, "RGB"), (225, 900, "L"), (1000, 300, "RGBA"), (300, 300, "RGB"),
                                      (224, 224, "RGB"), (231, 517, "RGB")]):  # fmt: skip
        path = folder / f"shape{i}.png"
        Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")).convert(mode).save(path)
        paths.append(path)
    return paths


def test_preprocessed_pixels_equal_clip_processor(tmp_path: Path, demo_model_dir: Path) -> None:
    # The pixel tensors themselves: a random CLIP's embeddings hardly move when every input is
    # scaled (cosines stay near 1), so only this comparison tells a wrong mean or std apart.
    sample = generate_sample(tmp_path / "imgs", photos=12)
    paths = [Path(p.path) for p in sample.photos] + _shapes(tmp_path)
    embedder = ClipEmbedder(str(demo_model_dir))
    processor = CLIPProcessor.from_pretrained(demo_model_dir)
    # One intensity level in normalised units: resizing in one step (ours) or two (CLIPProcessor:
    # resize, then crop) rounds some pixels to the neighbouring level, never further than 2.
    level = 1 / 255 / min(processor.image_processor.image_std)
    for path in paths:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            expected = processor(images=rgb, return_tensors="np")["pixel_values"][0]
            ours = embedder.preprocess(rgb)
        assert ours.shape == expected.shape == (3, 224, 224)
        diff = np.abs(ours - expected)
        if rgb.width == rgb.height:
            assert diff.max() < 1e-5, path.name
        assert diff.max() <= 2.01 * level, path.name
        assert diff.mean() <= 0.05 * level, path.name


def test_embeddings_agree_after_removing_their_common_direction(tmp_path: Path, demo_model_dir: Path) -> None:
    # The random demo model's embeddings share one large component: compare what is left of them.
    paths = [Path(p.path) for p in generate_sample(tmp_path / "imgs", photos=12).photos] + _shapes(tmp_path)
    embedder = ClipEmbedder(str(demo_model_dir))
    sources = [PhotoSource(p.stem, p.as_uri(), str(p)) for p in paths]
    ours = embed_all(sources, embedder, batch_size=4).embeddings
    model = CLIPModel.from_pretrained(demo_model_dir).eval()
    processor = CLIPProcessor.from_pretrained(demo_model_dir)
    pixels = []
    for path in paths:
        with Image.open(path) as img:
            pixels.append(processor(images=img.convert("RGB"), return_tensors="pt")["pixel_values"][0])
    with torch.inference_mode():
        direct = model.get_image_features(pixel_values=torch.stack(pixels)).pooler_output.numpy()
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    a, b = ours - ours.mean(axis=0), direct - direct.mean(axis=0)
    centred = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert centred.min() >= 0.999


def test_undecodable_images_become_failures(tmp_path: Path, demo_model_dir: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (64, 48), "red").save(folder / "red.png")
    Image.new("RGB", (64, 48), "blue").save(folder / "sub" / "blue.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("ignored")
    sources = scan_folder(folder)
    assert [s.photo_id for s in sources] == ["broken", "red", "sub/blue"]
    result = embed_all(sources, ClipEmbedder(str(demo_model_dir)))
    assert [p.photo_id for p in result.photos] == ["red", "sub/blue"]
    assert [(f.photo_id, f.stage) for f in result.failures] == [("broken", "decode")]

    # The same folder through the data set builder: the set records the model and every failure.
    out = tmp_path / "out"
    build(str(folder), out, lambda: ClipEmbedder(str(demo_model_dir)))
    photos = pq.read_table(out / "photos.parquet")
    assert photos.schema.metadata[MODEL_METADATA_KEY] == b"bildsuche-demo-clip"
    assert photos.column("photo_id").to_pylist() == ["red", "sub/blue"]
    assert pq.read_table(out / "failures.parquet").column("photo_id").to_pylist() == ["broken"]
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert files == ["failures.parquet", "photos.parquet"]


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="cannot load CLIP model"):
        ClipEmbedder(str(tmp_path / "no-model-here"))


def test_sample_is_deterministic(tmp_path: Path) -> None:
    a = generate_sample(tmp_path / "a", photos=24)
    b = generate_sample(tmp_path / "b", photos=24)
    assert [p.photo_id for p in a.photos] == [p.photo_id for p in b.photos]
    assert a.conversions == b.conversions
    assert any(p.photo_id.startswith("-") for p in a.photos)
    assert Path(a.photos[5].path).read_bytes() == Path(b.photos[5].path).read_bytes()


@pytest.mark.parametrize("batch_size", [1, 2, 4])  # each ends on a full batch of good photos
def test_photos_that_fail_last_are_accounted_for(tmp_path: Path, demo_model_dir: Path, batch_size: int) -> None:
    # Failures after the last full batch must still reach the sink: embedded + failed = every photo.
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 30), (60 * i, 20, 90)).save(folder / f"a{i}.png")
    for name in ("y-broken.jpg", "z-broken.jpg"):
        (folder / name).write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    sources = scan_folder(folder)
    assert [s.photo_id for s in sources][-2:] == ["y-broken", "z-broken"]
    result = embed_all(sources, ClipEmbedder(str(demo_model_dir)), batch_size=batch_size, workers=2)
    assert [p.photo_id for p in result.photos] == ["a0", "a1", "a2", "a3"]
    assert [f.photo_id for f in result.failures] == ["y-broken", "z-broken"]
    assert len(result.photos) + len(result.failures) == len(sources)
    out = tmp_path / "out"
    build(str(folder), out, lambda: ClipEmbedder(str(demo_model_dir)), BuildOptions(batch_size=batch_size))
    failed = pq.read_table(out / "failures.parquet").column("photo_id").to_pylist()
    embedded = pq.read_table(out / "photos.parquet").column("photo_id").to_pylist()
    assert sorted(failed) == ["y-broken", "z-broken"] and len(embedded) == 4
