"""Odd and hostile image files: each one is embedded, or becomes a decode failure; nothing else escapes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bildsuche.errors import InputDataError
from python_embed.decode import DECODE_ERRORS, MAX_DECODE_PIXELS, ImageTooLarge, decode
from python_embed.embedder import ClipEmbedder
from python_embed.folder import scan_folder
from python_embed.pipeline import embed_all
from python_embed.preprocess import ClipPreprocess
from python_embed.queries import embed_query
from reliability.hostile_images import CASES, grey8, mutations, pattern, write_cases

PREPROCESS = ClipPreprocess()


def pixels_of(path: Path) -> np.ndarray:
    return PREPROCESS(decode(str(path), PREPROCESS))


@pytest.mark.parametrize("name", list(CASES))
def test_each_image_class_decodes_or_is_refused(tmp_path: Path, name: str) -> None:
    path = write_cases(tmp_path, [name])[name]
    embeddable = CASES[name][2]
    if embeddable:
        pixels = pixels_of(path)
        assert pixels.shape == (3, 224, 224) and pixels.dtype == np.float32
        assert np.isfinite(pixels).all()
    else:
        with pytest.raises(DECODE_ERRORS):
            pixels_of(path)


@pytest.mark.parametrize("name", ["png_bomb_warning_range", "png_bomb_over_pillow_limit", "gif_bomb"])
def test_bombs_are_refused_before_their_pixels_are_decoded(tmp_path: Path, name: str) -> None:
    path = write_cases(tmp_path, [name])[name]
    data = path.read_bytes()
    width, height = (
        struct.unpack(">II", data[16:24]) if data.startswith(b"\x89PNG") else struct.unpack("<HH", data[6:10])
    )
    claimed = width * height
    assert claimed > MAX_DECODE_PIXELS and path.stat().st_size < 2_000_000
    with pytest.raises((ImageTooLarge, Image.DecompressionBombError)):
        decode(str(path), PREPROCESS)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    rotated = write_cases(tmp_path, ["exif_rotated_jpeg"])["exif_rotated_jpeg"]
    upright = tmp_path / "upright.jpg"
    pattern().save(upright, "JPEG", quality=95)
    got, want = pixels_of(rotated), pixels_of(upright)
    assert np.abs(got - want).mean() < 0.05
    stored_way = PREPROCESS(Image.open(rotated).convert("RGB"))
    assert np.abs(stored_way - want).mean() > 0.5  # the orientation matters for this picture


def test_sixteen_bit_grey_keeps_its_levels(tmp_path: Path) -> None:
    deep = write_cases(tmp_path, ["grey16_png"])["grey16_png"]
    shallow = tmp_path / "grey8.png"
    shallow.write_bytes(grey8())
    assert np.abs(pixels_of(deep) - pixels_of(shallow)).max() < 0.05


def test_rgb48_keeps_its_colours(tmp_path: Path) -> None:
    deep = write_cases(tmp_path, ["rgb48_png"])["rgb48_png"]
    shallow = tmp_path / "rgb24.png"
    pattern().save(shallow)
    assert np.abs(pixels_of(deep) - pixels_of(shallow)).max() < 0.05


def test_a_long_sliver_is_cropped_before_it_is_resized() -> None:
    sliver = Image.new("RGB", (1, 20000), "red")
    pixels = PREPROCESS(sliver)
    red = PREPROCESS(Image.new("RGB", (300, 300), "red"))
    np.testing.assert_allclose(pixels, red, atol=1e-5)


def test_crop_box_resize_equals_resize_then_crop() -> None:
    for size in [(200, 150), (320, 240), (1000, 300), (224, 500), (640, 427)]:
        image = pattern(size)
        width, height = PREPROCESS.resized_size(*size)
        whole = np.asarray(image.resize((width, height), resample=PREPROCESS.resample), dtype=np.float32)
        top, left = (height - 224) // 2, (width - 224) // 2
        expected = whole[top : top + 224, left : left + 224] * PREPROCESS.scale - PREPROCESS.offset
        got = PREPROCESS(image).transpose(1, 2, 0)
        assert np.abs(got - expected).max() <= 1.0 * PREPROCESS.scale.max() + 1e-6, size  # at most one level


def test_animated_gif_embeds_its_first_frame(tmp_path: Path) -> None:
    path = write_cases(tmp_path, ["animated_gif"])["animated_gif"]
    with Image.open(path) as img:
        first = PREPROCESS(img.convert("RGB"))
    np.testing.assert_allclose(pixels_of(path), first, atol=1e-6)


def _fuzz(tmp_path: Path, count: int) -> None:
    escaped: dict[str, str] = {}
    decoded = refused = 0
    for name, data in mutations(seed=7, count=count):
        path = tmp_path / "damaged.bin"
        path.write_bytes(data)
        try:
            pixels_of(path)
            decoded += 1
        except DECODE_ERRORS:
            refused += 1
        except Exception as exc:  # anything else would stop a whole build
            escaped[name] = f"{type(exc).__name__}: {exc}"
    assert not escaped, escaped
    assert decoded and refused


def test_damaged_files_decode_or_fail_cleanly(tmp_path: Path) -> None:
    _fuzz(tmp_path, 240)


@pytest.mark.full
def test_damaged_files_decode_or_fail_cleanly_full(tmp_path: Path) -> None:
    _fuzz(tmp_path, 6000)


def test_pipeline_accounts_for_every_image_class(tmp_path: Path, demo_model_dir: Path) -> None:
    write_cases(tmp_path / "photos")
    sources = scan_folder(tmp_path / "photos")
    result = embed_all(sources, ClipEmbedder(str(demo_model_dir)), batch_size=8, workers=4)
    by_case = {p.photo_id.split("/")[0] for p in result.photos}
    failed = {f.photo_id.split("/")[0]: f for f in result.failures}
    expected_ok = {name for name, (_, _, ok) in CASES.items() if ok}
    assert by_case == expected_ok
    assert set(failed) == set(CASES) - expected_ok
    assert all(f.stage == "decode" for f in failed.values())
    assert failed["png_bomb_warning_range"].reason.startswith("ImageTooLarge")
    assert np.isfinite(result.embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["png_bomb_warning_range", "svg", "truncated_jpeg", "empty_file"])
def test_saved_search_images_are_refused_clearly(tmp_path: Path, demo_model_dir: Path, name: str) -> None:
    path = write_cases(tmp_path, [name])[name]
    with pytest.raises(InputDataError, match="not a readable image"):
        embed_query(ClipEmbedder(str(demo_model_dir)), name="q", image=str(path))
