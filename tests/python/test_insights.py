"""The insight marts (keyword_suggestions, underexposed_lookalikes, keyword_search_relevance)
built by `dbt build` on a real embedded store, checked against numpy and pandas."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import insights_reference as ref
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bildsuche.dataset import MODEL_METADATA_KEY, KeywordEmbedding
from bildsuche.dbt import environment, run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from datasets_helpers import SYNTHETIC_MODEL, conversions_table, photos_table, write_synthetic
from seeds_loader import load
from seeds_loader.keywords import save_keyword_embeddings

pytestmark = pytest.mark.slow

K = 10  # neighbours_k
VARS: dict[str, Any] = {
    "neighbours_k": K,
    "suggestion_neighbours": 8,
    "suggestions_per_photo": 4,
    "underexposed_neighbours": 10,
    "underexposed_max_dist": 0.25,
    "underexposed_min_lookalikes": 3,
    "underexposed_min_neighbour_downloads": 5,
    "underexposed_max_share": 0.5,
    "relevance_k": 20,
    "relevance_min_searches": 10,
}
TAGS = ("sunset", " Sky", "forest ", "DOG", "")


@dataclass
class Built:
    data: ref.Collection
    keyword_vectors: dict[str, np.ndarray]
    store: Path
    root: Path


def write_collection(directory: Path, seed: int, n: int = 240, drop: int = 0) -> ref.Collection:
    """write_synthetic's photos and conversions, plus rare and blank keywords and tags
    (raw.keywords) written with stray spaces and capitals."""
    synthetic = write_synthetic(directory, n=n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    ids, x = synthetic.photo_ids[drop:], synthetic.embeddings[drop:]
    conversions = [(p, kw) for p, kw in synthetic.conversions if p in set(ids)]
    conversions += [(ids[5], "Rare One")] * 3 + [(ids[6], "  ")] * 2
    tags = [(p, str(rng.choice(TAGS))) for p in ids for _ in range(int(rng.integers(0, 3)))]
    if drop:
        photos = photos_table(ids, x).replace_schema_metadata({MODEL_METADATA_KEY: SYNTHETIC_MODEL.encode()})
        pq.write_table(photos, directory / "photos.parquet")
    pq.write_table(conversions_table(conversions), directory / "conversions.parquet")
    pq.write_table(
        pa.table({"photo_id": [t[0] for t in tags], "keyword": [t[1] for t in tags]}), directory / "keywords.parquet"
    )
    return ref.Collection(
        list(ids),
        x,
        pd.DataFrame(conversions, columns=["photo_id", "keyword"]),
        pd.DataFrame(tags, columns=["photo_id", "keyword"]),
    )


def keyword_vectors(data: ref.Collection, seed: int) -> dict[str, np.ndarray]:
    """A random unit vector for every keyword but 'night' (left unembedded)."""
    rng = np.random.default_rng(seed)
    vectors = {}
    for keyword in sorted(set(data.normalised_conversions()["keyword"])):
        if keyword != "night":
            v = rng.standard_normal(data.embeddings.shape[1])
            vectors[keyword] = (v / np.linalg.norm(v)).astype(np.float32)
    return vectors


def save_vectors(store: Path, vectors: dict[str, np.ndarray]) -> None:
    rows = [KeywordEmbedding(SYNTHETIC_MODEL, kw, v.tolist()) for kw, v in vectors.items()]
    # Another model's cached keywords are not the photos' and must be left out.
    rows += [KeywordEmbedding("other-model", kw, (-v).tolist()) for kw, v in vectors.items()]
    with client_for("embedded", path=store) as client:
        save_keyword_embeddings(client, rows)


def dbt_build(root: Path, store: Path, command: str = "build", **extra: Any) -> None:
    with environment({"DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs")}):
        run_dbt([command], db_path=store, dbt_vars={**VARS, **extra}, quiet=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("insights")
    data = write_collection(root / "dataset", seed=3)
    store = root / "store"
    with client_for("embedded", path=store) as client:
        load(client, root / "dataset")
    vectors = keyword_vectors(data, seed=5)
    save_vectors(store, vectors)
    # `dbt run`: the dbt tests run in a test of their own, so a broken mart fails them and
    # the comparisons below alike.
    dbt_build(root, store, "seed")
    dbt_build(root, store, "run")
    yield Built(data, vectors, store, root)


def frame(store: Path, sql: str) -> pd.DataFrame:
    with client_for("embedded", path=store) as client:
        return client.query_df(sql)


def assert_suggestions_match(data: ref.Collection, store: Path, n: int, per_photo: int) -> None:
    expected = ref.keyword_suggestions(data, K, n, per_photo)
    got = frame(store, "SELECT * FROM analytics.keyword_suggestions ORDER BY photo_id, rank")
    assert len(got) == len(expected) > 100
    assert list(got["photo_id"]) == list(expected["photo_id"])
    assert list(got["rank"]) == list(expected["rank"])
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-5)
    # Every keyword given carries its own true score (a near tie may swap two keywords' places).
    true_score = {
        (p, kw): s for p, kw, s in zip(expected["photo_id"], expected["keyword"], expected["score"], strict=True)
    }
    full = ref.keyword_suggestions(data, K, n, 10_000)
    true_score.update({(p, kw): s for p, kw, s in zip(full["photo_id"], full["keyword"], full["score"], strict=True)})
    for p, kw, score in zip(got["photo_id"], got["keyword"], got["score"], strict=True):
        assert (p, kw) in true_score, f"{kw!r} is not a keyword to suggest for {p}"
        assert score == pytest.approx(true_score[(p, kw)], rel=1e-5)
    merged = got.merge(expected, on=["photo_id", "keyword"], suffixes=("", "_ref"))
    assert (merged["neighbour_downloads"] == merged["neighbour_downloads_ref"]).all()
    assert (merged["neighbours"] == merged["neighbours_ref"]).all()


def test_the_dbt_tests_of_the_marts_pass(built: Built) -> None:
    dbt_build(built.root, built.store, "test")


def test_keyword_suggestions_equal_pandas(built: Built) -> None:
    assert_suggestions_match(built.data, built.store, VARS["suggestion_neighbours"], VARS["suggestions_per_photo"])
    got = frame(built.store, "SELECT keyword FROM analytics.keyword_suggestions")
    assert not set(got["keyword"]) & {"", "Sunset", "sky "}  # spelled as stg_conversions spells them


def test_suggestions_leave_out_the_photos_own_keywords_and_tags(built: Built) -> None:
    suggested = frame(built.store, "SELECT photo_id, keyword FROM analytics.keyword_suggestions")
    pairs = set(zip(suggested["photo_id"], suggested["keyword"], strict=True))
    tags = built.data.normalised_tags()
    conversions = built.data.normalised_conversions()
    assert not pairs & set(zip(tags["photo_id"], tags["keyword"], strict=True))
    assert not pairs & set(zip(conversions["photo_id"], conversions["keyword"], strict=True))
    # ... which without that rule would fill most of the lists.
    unfiltered = ref.keyword_suggestions(
        built.data, K, VARS["suggestion_neighbours"], VARS["suggestions_per_photo"], exclude_own=False
    )
    own = set(zip(conversions["photo_id"], conversions["keyword"], strict=True))
    assert sum((p, kw) in own for p, kw in zip(unfiltered["photo_id"], unfiltered["keyword"], strict=True)) > 200


def test_underexposed_lookalikes_equal_pandas(built: Built) -> None:
    near = ref.neighbours(built.data, K)
    assert not np.any(np.abs(near["dist"] - VARS["underexposed_max_dist"]) < 2e-6)  # no tie at the threshold
    expected = ref.underexposed(
        built.data, K, VARS["underexposed_neighbours"], VARS["underexposed_max_dist"],
        VARS["underexposed_min_lookalikes"], VARS["underexposed_min_neighbour_downloads"],
        VARS["underexposed_max_share"],
    )  # fmt: skip
    got = frame(built.store, "SELECT * FROM analytics.underexposed_lookalikes ORDER BY rank")
    assert len(expected) >= 5, "the data must hold overlooked photos for this test to mean something"
    assert list(got["photo_id"]) == list(expected["photo_id"])
    assert list(got["rank"]) == list(expected["rank"])
    assert list(got["downloads"]) == list(expected["downloads"])
    np.testing.assert_allclose(got["neighbour_downloads"], expected["neighbour_downloads"])
    np.testing.assert_allclose(got["mean_dist"], expected["mean_dist"], atol=1e-6)
    assert list(got["lookalikes"]) == list(expected["lookalikes"])
    np.testing.assert_allclose(got["download_share"], expected["downloads"] / expected["neighbour_downloads"])
    assert list(got["picture_url"]) == list(got["photo_image_url"])  # web photos: their own URL
    downloads = built.data.downloads()
    suggestions = ref.keyword_suggestions(built.data, K, VARS["suggestion_neighbours"], VARS["suggestions_per_photo"])
    for row in got.itertuples():
        lookalikes = near[(near["photo_id"] == row.photo_id) & (near["dist"] <= VARS["underexposed_max_dist"])]
        assert row.top_lookalike_downloads == downloads.loc[list(lookalikes["neighbour_id"])].max()
        assert downloads.loc[row.top_lookalike_id] == row.top_lookalike_downloads
        scored = suggestions[suggestions["photo_id"] == row.photo_id]
        assert len(row.suggested_keywords) == len(scored)
        assert sorted(row.suggested_keywords) == sorted(scored["keyword"])


def ranks(column: pd.Series) -> list[int | None]:
    return [None if pd.isna(r) else int(r) for r in column]


def assert_relevance_matches(built: Built, k: int) -> pd.DataFrame:
    expected = ref.search_relevance(built.data, built.keyword_vectors, k, VARS["relevance_min_searches"])
    got = frame(built.store, "SELECT * FROM analytics.keyword_search_relevance ORDER BY keyword")
    assert list(got["keyword"]) == list(expected["keyword"])
    for column in ("searches", "downloaded_photos", "found_photos"):
        assert list(got[column]) == list(expected[column]), column
    assert ranks(got["best_rank"]) == ranks(expected["best_rank"])
    for column in ("recall_at_k", "mrr"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, err_msg=column)
    assert (got["k"] == k).all()
    return expected


def test_keyword_search_relevance_equals_numpy(built: Built) -> None:
    expected = assert_relevance_matches(built, VARS["relevance_k"])
    got = frame(built.store, "SELECT keyword, model FROM analytics.keyword_search_relevance")
    assert "night" not in set(got["keyword"])  # not embedded
    assert "rare one" not in set(got["keyword"])  # too few searches
    assert len(expected) >= 8
    assert set(got["model"]) == {SYNTHETIC_MODEL}  # not the other model's cached keywords
    assert (expected["found_photos"] > 0).any() and (expected["recall_at_k"] < 1).any()


def test_vars_shape_the_marts_and_a_bad_one_is_refused(built: Built) -> None:
    try:
        dbt_build(built.root, built.store, suggestion_neighbours=3, suggestions_per_photo=2)
        assert_suggestions_match(built.data, built.store, 3, 2)
        # A search depth of 2: most keywords find none of their photos (best_rank NULL).
        dbt_build(built.root, built.store, relevance_k=2)
        expected = assert_relevance_matches(built, 2)
        assert expected["best_rank"].isna().any() and expected["best_rank"].notna().any()
        with pytest.raises(DbtRunError, match=r"var 'suggestion_neighbours' \(11\) exceeds neighbours_k \(10\)"):
            dbt_build(built.root, built.store, suggestion_neighbours=11)
        with pytest.raises(DbtRunError, match="var 'underexposed_max_share' must be a number from 0 to 1"):
            dbt_build(built.root, built.store, underexposed_max_share="1; drop table raw.photos")
    finally:
        dbt_build(built.root, built.store)


def test_changed_data_gives_the_marts_of_a_fresh_build(built: Built, tmp_path: Path) -> None:
    # A new set replaces the old in the same store: photos gone, conversions changed, neighbours
    # recomputed incrementally; the marts must be those of the new data.
    data = write_collection(tmp_path / "v2", seed=3, drop=12)
    data.conversions = data.conversions.iloc[len(data.conversions) // 3 :].reset_index(drop=True)
    pq.write_table(
        conversions_table(list(zip(data.conversions["photo_id"], data.conversions["keyword"], strict=True))),
        tmp_path / "v2" / "conversions.parquet",
    )
    try:
        with client_for("embedded", path=built.store) as client:
            load(client, tmp_path / "v2")
        dbt_build(built.root, built.store)
        assert_suggestions_match(data, built.store, VARS["suggestion_neighbours"], VARS["suggestions_per_photo"])
        expected = ref.search_relevance(
            data, built.keyword_vectors, VARS["relevance_k"], VARS["relevance_min_searches"]
        )
        got = frame(
            built.store,
            "SELECT keyword, found_photos, best_rank FROM analytics.keyword_search_relevance ORDER BY keyword",
        )
        assert list(got["keyword"]) == list(expected["keyword"])
        assert list(got["found_photos"]) == list(expected["found_photos"])
        gone = set(built.data.photo_ids) - set(data.photo_ids)
        listed = frame(built.store, "SELECT photo_id FROM analytics.underexposed_lookalikes")
        assert not gone & set(listed["photo_id"])
    finally:
        with client_for("embedded", path=built.store) as client:
            load(client, built.root / "dataset")
        dbt_build(built.root, built.store)
