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
from python_embed.build import build
from python_embed.demo_model import create_demo_model, is_demo_model
from python_embed.embedder import ClipEmbedder, ModelUnavailableError
from python_embed.folder import scan_folder
from python_embed.pipeline import embed_all
from python_embed.sample import generate_sample


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
