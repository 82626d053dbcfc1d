"""Saved searches: `python_embed query` -> raw.search_queries -> analytics.search_results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bildsuche.cli import module_main
from bildsuche.dbt import run_dbt
from bildsuche.errors import EmbeddingModelMismatchError, InputDataError, UsageError
from bildsuche.store import client_for
from datasets_helpers import SYNTHETIC_MODEL, write_synthetic
from python_embed.build import build
from python_embed.demo_model import DEMO_MODEL_NAME
from python_embed.embedder import ClipEmbedder
from python_embed.queries import embed_query
from seeds_loader import load
from seeds_loader.searches import photo_models, save_query

pytestmark = pytest.mark.slow


def main(argv: list[str]) -> int:
    """`python -m python_embed ARGS`, in-process."""
    return module_main("python_embed", ("build", "query"), argv)


def test_text_and_image_searches_become_a_mart(tmp_path: Path, demo_model_dir: Path) -> None:
    embedder = ClipEmbedder(str(demo_model_dir))
    build("sample", tmp_path / "ds", lambda: embedder)
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, tmp_path / "ds")
        photo = client.query(
            "SELECT photo_id, photo_image_url FROM raw.photos ORDER BY id LIMIT 1 OFFSET 7"
        ).result_rows[0]
        image = photo[1].removeprefix("file://")
        save_query(client, embed_query(embedder, name="sunset's glow", text="an orange sunset over the sea"))
        save_query(client, embed_query(embedder, name="first try", text="to be replaced"))
        save_query(client, embed_query(embedder, name="first try", image=image))
    run_dbt(["build"], db_path=store, dbt_vars={"top_k": 6}, quiet=True)
    with client_for("embedded", path=store) as client:
        rows = client.query(
            "SELECT query_name, rank, photo_id, dist, downloads FROM analytics.search_results ORDER BY query_name, rank"
        ).result_rows
        kinds = dict(client.query("SELECT name, kind FROM analytics.stg_search_queries").result_rows)
        per_photo = dict(client.query("SELECT photo_id, count() FROM raw.conversions GROUP BY photo_id").result_rows)
    by_query: dict[str, list[tuple[object, ...]]] = {}
    for row in rows:
        by_query.setdefault(str(row[0]), []).append(row)
    assert set(by_query) == {"sunset's glow", "first try"}
    assert kinds == {"sunset's glow": "text", "first try": "image"}  # the newer save replaced the text
    for results in by_query.values():
        assert [r[1] for r in results] == [1, 2, 3, 4, 5, 6]
        assert [r[3] for r in results] == sorted(r[3] for r in results)
        assert all(r[4] == per_photo.get(r[2], 0) for r in results)
    first = by_query["first try"][0]
    assert first[2] == photo[0] and float(first[3]) == pytest.approx(0.0, abs=1e-4)  # type: ignore[arg-type]


def test_bad_queries_are_refused(tmp_path: Path, demo_model_dir: Path) -> None:
    embedder = ClipEmbedder(str(demo_model_dir))
    with pytest.raises(UsageError, match="exactly one"):
        embed_query(embedder, name="x", text="a", image="b")
    with pytest.raises(UsageError, match="--text is empty"):
        embed_query(embedder, name="x", text="   ")
    with pytest.raises(UsageError, match="printable"):
        embed_query(embedder, name="bad\nname", text="a")
    with pytest.raises(InputDataError, match="no such file"):
        embed_query(embedder, name="x", image=str(tmp_path / "missing.jpg"))
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(InputDataError, match="not a readable image"):
        embed_query(embedder, name="x", image=str(tmp_path / "notes.jpg"))


def test_text_embeddings_are_unit_vectors_of_the_model_dimension(demo_model_dir: Path) -> None:
    vectors = ClipEmbedder(str(demo_model_dir)).embed_texts(["a dog", "a photo of a mountain lake at dawn"])
    assert vectors.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def photos_of(tmp_path: Path, model: str | None) -> Path:
    """A store holding synthetic photos recorded as embedded by ``model``."""
    store = tmp_path / "store"
    data = write_synthetic(tmp_path / "ds", n=20, model=model)
    with client_for("embedded", path=store) as client:
        load(client, data.directory, full_refresh=True)  # the photos of another model replace any there
    return store


def saved_names(store: Path) -> list[str]:
    with client_for("embedded", path=store) as client:
        return [str(r[0]) for r in client.query("SELECT name FROM raw.search_queries ORDER BY name").result_rows]


def test_a_search_of_another_model_than_the_photos_is_refused(tmp_path: Path, demo_model_dir: Path) -> None:
    store = photos_of(tmp_path, SYNTHETIC_MODEL)
    query = embed_query(ClipEmbedder(str(demo_model_dir)), name="beach", text="a beach")
    with client_for("embedded", path=store) as client:
        with pytest.raises(
            EmbeddingModelMismatchError, match=f"embedded by {SYNTHETIC_MODEL}, not by {DEMO_MODEL_NAME}"
        ):
            save_query(client, query)
        assert photo_models(client) == [SYNTHETIC_MODEL]
    assert saved_names(store) == []


def test_photos_of_an_unknown_model_take_no_searches(tmp_path: Path, demo_model_dir: Path) -> None:
    store = photos_of(tmp_path, None)
    query = embed_query(ClipEmbedder(str(demo_model_dir)), name="beach", text="a beach")
    with client_for("embedded", path=store) as client:
        with pytest.raises(EmbeddingModelMismatchError, match="--embed-model"):
            save_query(client, query)
        # A raw.photos of before embed_model existed reads as 'unknown' too.
        client.command("ALTER TABLE raw.photos DROP COLUMN embed_model")
        assert photo_models(client) == ["unknown"]
        with pytest.raises(EmbeddingModelMismatchError, match="'unknown'"):
            save_query(client, query)


def test_the_cli_refuses_a_search_of_another_model(
    tmp_path: Path, demo_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos_of(tmp_path, SYNTHETIC_MODEL)  # the store of $BILDSUCHE_DB_PATH
    code = main(["query", "--name", "beach", "--text", "a beach", "--model", str(demo_model_dir)])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("python_embed: error: the photos in raw.photos were embedded by synthetic-clip")
    assert "\n" not in err
    assert saved_names(tmp_path / "store") == []
    # With photos of its model, the same command saves the search.
    photos_of(tmp_path, DEMO_MODEL_NAME)
    assert main(["query", "--name", "beach", "--text", "a beach", "--model", str(demo_model_dir)]) == 0
    assert saved_names(tmp_path / "store") == ["beach"]
