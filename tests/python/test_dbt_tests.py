"""The dbt tests of the project fail when what they guard is broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from bildsuche.dbt import run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from datasets_helpers import SYNTHETIC_MODEL, built_store, write_synthetic

pytestmark = pytest.mark.slow


def build_store(root: Path, n: int = 80) -> Path:
    return built_store(root, write_synthetic(root / "dataset", n=n), {"target_photo_id": "p0003", "top_k": 5})


def execute(store: Path, *statements: str) -> None:
    with client_for("embedded", path=store) as client:
        for sql in statements:
            client.command(sql, settings={"mutations_sync": 2})


def test_index_status_test_fails_without_the_index(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    run_dbt(["test", "--select", "test_name:vector_index_built"], db_path=store, quiet=True)
    execute(store, "ALTER TABLE analytics.photos DROP INDEX photo_embed_idx")
    with pytest.raises(DbtRunError, match="vector_index_built"):
        run_dbt(["test", "--select", "test_name:vector_index_built"], db_path=store, quiet=True)
    # Re-adding the index without materialising it leaves the existing part unindexed.
    execute(
        store,
        "ALTER TABLE analytics.photos ADD INDEX photo_embed_idx photo_embed "
        "TYPE vector_similarity('hnsw', 'cosineDistance', 512) GRANULARITY 100000000",
    )
    with pytest.raises(DbtRunError, match="vector_index_built"):
        run_dbt(["test", "--select", "test_name:vector_index_built"], db_path=store, quiet=True)
    # A rebuild of the model brings it back through the post-hook.
    run_dbt(["run", "--select", "photos"], db_path=store, quiet=True)
    run_dbt(["test", "--select", "test_name:vector_index_built"], db_path=store, quiet=True)


def test_row_count_test_fails_when_a_row_is_missing(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    execute(store, "DELETE FROM analytics.photos WHERE photo_id = 'p0009'")
    with pytest.raises(DbtRunError, match="row_count_equals_photos"):
        run_dbt(["test", "--select", "photos"], db_path=store, quiet=True)


def test_top_k_test_fails_with_a_row_short(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    execute(store, "DELETE FROM analytics.top_k_neighbours WHERE rank = 5")
    with pytest.raises(DbtRunError, match="top_k_neighbours_has_k_rows"):
        run_dbt(["test", "--select", "top_k_neighbours"], db_path=store, dbt_vars={"top_k": 5}, quiet=True)


def test_vector_tests_catch_unnormalised_embeddings(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    execute(
        store,
        "INSERT INTO raw.photos SELECT 999, 'loud', 'u', arrayMap(x -> x * 3, photo_embed), embed_model, 0 "
        "FROM raw.photos LIMIT 1",
    )
    with pytest.raises(DbtRunError, match="unit_norm"):
        run_dbt(["test", "--select", "stg_photos"], db_path=store, quiet=True)


def test_conversions_of_unknown_photos_fail_relationships(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    execute(store, "INSERT INTO raw.conversions VALUES (100000, 'ghost', 'kw')")
    with pytest.raises(DbtRunError, match="relationships_stg_conversions"):
        run_dbt(["test", "--select", "stg_conversions"], db_path=store, quiet=True)


def stored_failures(store: Path, test_name: str) -> list[tuple[object, ...]]:
    with client_for("embedded", path=store) as client:
        return list(client.query(f"SELECT * FROM analytics_dbt_test__audit.`{test_name}`").result_rows)


def test_photos_of_two_models_fail_with_the_models_named(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    run_dbt(["test", "--select", "test_name:one_embedding_model"], db_path=store, quiet=True)
    execute(
        store,
        "INSERT INTO raw.photos SELECT 999, 'other', 'u', photo_embed, 'model-b', 0 FROM raw.photos LIMIT 1",
    )
    name = "one_embedding_model_stg_photos_embed_model"
    with pytest.raises(DbtRunError, match=rf"{name}: Got 2 results.*rows: select \* from `analytics_dbt_test__audit`"):
        run_dbt(["test", "--select", "stg_photos"], db_path=store, quiet=True)
    rows = sorted(stored_failures(store, name))
    assert [row[:2] for row in rows] == [("model-b", 1), (SYNTHETIC_MODEL, 80)]
    assert all("2 embedding models in stg_photos" in str(row[2]) for row in rows)


def test_a_saved_search_of_another_model_fails_with_its_name(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    execute(
        store,
        "INSERT INTO raw.search_queries SELECT 'beach', 'text', 'a beach', 'model-c', photo_embed, now64(3), '' "
        "FROM raw.photos LIMIT 1",
    )
    with pytest.raises(DbtRunError, match="saved_searches_match_photos_model: Got 1 result"):
        run_dbt(["test", "--select", "saved_searches_match_photos_model"], db_path=store, quiet=True)
    [row] = stored_failures(store, "saved_searches_match_photos_model")
    assert row[:4] == ("beach", "model-c", SYNTHETIC_MODEL, 80)
    assert str(row[4]).startswith(f"saved search 'beach' was embedded by model-c, 80 photo(s) by {SYNTHETIC_MODEL}")
    # Saved again with the photos' model, the search passes.
    execute(
        store,
        "INSERT INTO raw.search_queries SELECT 'beach', 'text', 'a beach', embed_model, photo_embed, now64(3) + 1, '' "
        "FROM raw.photos LIMIT 1",
    )
    run_dbt(["test", "--select", "saved_searches_match_photos_model"], db_path=store, quiet=True)


def test_a_text_search_of_a_text_model_that_does_not_fit_fails_with_its_name(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    run_dbt(["seed"], db_path=store, quiet=True)
    execute(
        store,
        "INSERT INTO raw.search_queries SELECT 'strand', 'text', 'Strand', embed_model, photo_embed, now64(3), "
        "'sentence-transformers/clip-ViT-B-32-multilingual-v1' FROM raw.photos LIMIT 1",
    )
    with pytest.raises(DbtRunError, match="saved_searches_text_model_fits: Got 1 result"):
        run_dbt(["test", "--select", "saved_searches_text_model_fits"], db_path=store, quiet=True)
    [row] = stored_failures(store, "saved_searches_text_model_fits")
    assert row[:3] == ("strand", "sentence-transformers/clip-ViT-B-32-multilingual-v1", SYNTHETIC_MODEL)
    assert "seeds/text_model_fits.csv does not list for synthetic-clip" in str(row[3])
    # The CLIP model's own text tower (recorded, or '' as before text models were recorded) fits.
    execute(
        store,
        "INSERT INTO raw.search_queries SELECT 'strand', 'text', 'Strand', embed_model, photo_embed, now64(3) + 1, "
        "embed_model FROM raw.photos LIMIT 1",
    )
    run_dbt(["test", "--select", "saved_searches_text_model_fits"], db_path=store, quiet=True)


def test_insight_tests_fail_on_broken_marts(tmp_path: Path) -> None:
    store = build_store(tmp_path, n=120)
    tests = ["keyword_suggestions_ranked", "keyword_suggestions_exclude_own_keywords", "underexposed_lookalikes"]
    run_dbt(["test", "--select", *tests], db_path=store, quiet=True)
    with client_for("embedded", path=store) as client:
        photo, keyword = client.query(
            "SELECT photo_id, keyword FROM analytics.stg_conversions "
            "WHERE photo_id IN (SELECT photo_id FROM analytics.keyword_suggestions) LIMIT 1"
        ).result_rows[0]
    # A keyword the photo was downloaded under, suggested to it.
    execute(
        store,
        f"INSERT INTO analytics.keyword_suggestions VALUES ('{photo}', '{keyword}', 1e9, 1, 1, 1)",
    )
    with pytest.raises(DbtRunError, match="keyword_suggestions_exclude_own_keywords: Got 1 result"):
        run_dbt(["test", "--select", "keyword_suggestions_exclude_own_keywords"], db_path=store, quiet=True)
    # Two rank-1 rows of one photo, the second best scored first.
    with pytest.raises(DbtRunError, match="keyword_suggestions_ranked: Got 1 result"):
        run_dbt(["test", "--select", "keyword_suggestions_ranked"], db_path=store, quiet=True)
    # A photo listed whose downloads exceed the share the var allows.
    execute(
        store,
        "INSERT INTO analytics.underexposed_lookalikes SELECT * REPLACE (0.9 AS download_share, 99999 AS rank) "
        "FROM analytics.underexposed_lookalikes LIMIT 1",
    )
    with pytest.raises(DbtRunError, match="value_between_underexposed_lookalikes_download_share"):
        run_dbt(["test", "--select", "underexposed_lookalikes"], db_path=store, quiet=True)
