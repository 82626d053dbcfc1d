"""The injection corpus against dbt vars, saved searches, and file and store paths.

Every payload of reliability.payloads is a photo id of the battery's store, so
a payload given as `target_photo_id` must describe that photo's neighbours,
exactly; given as a saved search's name, it must come back as that name;
given as a folder or store name, it must be that folder.  Nothing else in
the store may change.  (The BI endpoint's parameters: test_serve_hostile.py;
quoting for any string at all: test_properties.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bildsuche.dbt import run_dbt
from bildsuche.errors import DbtRunError, InputDataError, StoreUnavailableError, UsageError
from bildsuche.store import client_for
from datasets_helpers import write_synthetic
from marts_reference import reference
from python_embed.embedder import ClipEmbedder
from python_embed.queries import embed_query
from reliability.payloads import INTEGERS, STRINGS, file_names, printable
from reliability.stores import PayloadStore
from seeds_loader import load
from seeds_loader.searches import photo_models, save_query

pytestmark = pytest.mark.slow

# The quick battery's share of the corpus: a quote after a backslash, template syntax, a NUL and a line break.
QUICK_TARGETS = (
    "back\\slash'); DROP TABLE raw.photos; --",
    "{{ run_query('drop table raw.photos') }}",
    "a\x00'; DROP TABLE raw.photos; --",
)
QUICK_INTEGERS = ("1e3", "{{ 5 }}", "²", "0x10")
RAW_SQL = """
SELECT
    (SELECT (count(), sum(cityHash64(id, photo_id, photo_image_url, photo_embed))) FROM raw.photos),
    (SELECT (count(), sum(cityHash64(id, photo_id, keyword))) FROM raw.conversions),
    (SELECT arraySort(groupArray(database || '.' || name)) FROM system.tables WHERE database IN ('raw', 'analytics'))
"""


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with client_for("embedded", path=store) as client:
        return list(client.query(sql).result_rows)


@pytest.fixture()
def store(payload_store: PayloadStore) -> Iterator[PayloadStore]:
    """The battery's store; its raw tables and the list of tables must come out unchanged, marts aside."""
    before = query(payload_store.store, RAW_SQL)
    yield payload_store
    assert query(payload_store.store, RAW_SQL) == before


def rebuild(store: Path, **dbt_vars: Any) -> None:
    run_dbt(["build", "--select", "top_k_neighbours+"], db_path=store, dbt_vars=dbt_vars, quiet=True)


def assert_neighbours_of(payload_store: PayloadStore, target: str, k: int) -> None:
    rows = query(payload_store.store, "SELECT target_photo_id, photo_id, dist FROM analytics.top_k_neighbours")
    expected = reference(payload_store.data, target, k)
    assert {r[0] for r in rows} == {target}
    assert {r[1]: r[2] for r in rows} == pytest.approx(dict(expected.neighbours), abs=2e-6)
    downloads = dict(query(payload_store.store, "SELECT photo_id, downloads FROM analytics.conversions_per_candidate"))
    assert downloads == expected.downloads


def _targets(store: PayloadStore, targets: tuple[str, ...] | list[str]) -> None:
    for target in targets:
        rebuild(store.store, target_photo_id=target, top_k=4)
        assert_neighbours_of(store, target, 4)


def test_payload_targets_are_photo_ids(store: PayloadStore) -> None:
    _targets(store, QUICK_TARGETS)


@pytest.mark.full
def test_payload_targets_are_photo_ids_full(store: PayloadStore) -> None:
    _targets(store, [s for s in STRINGS if s not in QUICK_TARGETS])


FILTER_TEXT_VARS = ("filter_keyword", "filter_colour", "filter_country", "filter_photographer")
FILTER_VIEW = (
    "SELECT photo_id FROM analytics.filtered_neighbours(photo_id = 'p0005', k = 4, keyword = {v:String},"
    " colour = {v:String}, country = {v:String}, photographer = {v:String}, date_from = '', date_to = '',"
    " min_downloads = 0)"
)


def test_filter_vars_are_values(store: PayloadStore) -> None:
    # No photo of the store has a payload as keyword, colour, country or photographer: no candidates.
    try:
        for i, payload in enumerate(QUICK_TARGETS):
            rebuild(store.store, target_photo_id="p0005", top_k=4, **{FILTER_TEXT_VARS[i % 4]: payload})
            assert query(store.store, "SELECT count() FROM analytics.top_k_neighbours") == [(0,)]
            with pytest.raises(DbtRunError, match="var 'filter_date_from' must be a date"):
                rebuild(store.store, target_photo_id="p0005", filter_date_from=payload)
    finally:
        rebuild(store.store, target_photo_id="p0005", top_k=10)


def test_filtered_view_parameters_are_values(store: PayloadStore) -> None:
    with client_for("embedded", path=store.store) as client:
        for payload in STRINGS:
            assert client.query(FILTER_VIEW, parameters={"v": payload}).result_rows == [], payload
        assert len(client.query(FILTER_VIEW, parameters={"v": ""}).result_rows) == 4


def _integers(store: PayloadStore, values: tuple[str, ...], names: tuple[str, ...]) -> None:
    for value in values:
        whole = value.strip().isdigit() and value.strip().isascii() and 1 <= int(value) <= 100_000
        if whole:
            rebuild(store.store, target_photo_id="p0005", top_k=value)
            assert len(query(store.store, "SELECT * FROM analytics.top_k_neighbours")) == int(value)
            continue
        for var in names:
            with pytest.raises(DbtRunError, match=f"var '{var}' must be a whole number from 1 to 100000"):
                rebuild(store.store, **{"target_photo_id": "p0005", var: value})


def test_integer_vars_take_whole_numbers_only(store: PayloadStore) -> None:
    _integers(store, QUICK_INTEGERS, ("top_k", "hnsw_ef_search"))


@pytest.mark.full
def test_integer_vars_take_whole_numbers_only_full(store: PayloadStore) -> None:
    _integers(store, INTEGERS, ("top_k", "top_keywords", "hnsw_ef_search"))


def _checked_vars(store: PayloadStore, cases: list[tuple[str, str, str]]) -> None:
    for var, value, message in cases:
        with pytest.raises(DbtRunError, match=message):
            run_dbt(["test", "--select", "stg_photos"], db_path=store.store, dbt_vars={var: value}, quiet=True)


def test_vars_of_the_dbt_tests_cannot_switch_them_off(store: PayloadStore) -> None:
    # 'nan' as the norm tolerance made `abs(norm - 1) > nan` false for every row: a test that always passed.
    _checked_vars(store, [("norm_tolerance", "nan", "var 'norm_tolerance' must be a number from 0 to 1")])


@pytest.mark.full
def test_vars_of_the_dbt_tests_cannot_switch_them_off_full(store: PayloadStore) -> None:
    tolerance = "var 'norm_tolerance' must be a number from 0 to 1"
    _checked_vars(
        store,
        [("norm_tolerance", v, tolerance) for v in ("inf", "-1", "x", "0.1; DROP TABLE raw.photos", "{{ 1 }}")],
    )


def test_saved_search_names_and_texts_stay_text(store: PayloadStore, demo_model_dir: Path) -> None:
    embedder = ClipEmbedder(str(demo_model_dir))
    names = printable()
    with client_for("embedded", path=store.store) as client:
        # The store's photos are synthetic vectors of their own model: the searches say they are of it too.
        (model,) = photo_models(client)
        for name in names:
            save_query(client, replace(embed_query(embedder, name=name, text=name), model=model))
        control = embed_query(embedder, name="control chars in the text", text="\x00\n\t'\\`")
        save_query(client, replace(control, model=model))
    for refused in (s for s in STRINGS if s not in names):
        with pytest.raises(UsageError, match="printable"):
            embed_query(embedder, name=refused, text="x")
    run_dbt(["build", "--select", "stg_search_queries", "search_results"], db_path=store.store, quiet=True)
    stored = query(store.store, "SELECT name, query FROM raw.search_queries FINAL")
    assert sorted(stored) == sorted([(n, n) for n in names] + [("control chars in the text", "\x00\n\t'\\`")])
    results = query(store.store, "SELECT query_name, count() FROM analytics.search_results GROUP BY query_name")
    assert dict(results) == {name: 10 for name in [*names, "control chars in the text"]}


def test_payload_folder_names_are_folders(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", n=12)
    with client_for("embedded", path=tmp_path / "store") as client:
        for name in file_names():
            folder = tmp_path / "folders" / name
            folder.mkdir(parents=True)
            for parquet in data.directory.iterdir():
                shutil.copy(parquet, folder / parquet.name)
            report = load(client, folder)
            # The same files in every folder: loaded once, then found unchanged.
            assert report.rows.get("photos") == 12 or report.unchanged == ["photos", "conversions"], name
            assert client.command("SELECT count() FROM raw.photos") == 12, name
            (folder / "photos.parquet").unlink()
            with pytest.raises(InputDataError, match=r"no photos\.parquet"):
                load(client, folder)
    dashed = tmp_path / "-leading-dash"
    shutil.copytree(data.directory, dashed)
    done = subprocess.run(
        [sys.executable, "-m", "seeds_loader", "--", "-leading-dash"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "BILDSUCHE_DB_PATH": str(tmp_path / "store")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["store#fragment", "st%20ore", "sto're", "back\\slash", "ümlaut 漢字", "a;b"])
def test_store_paths_are_the_directories_named(tmp_path: Path, name: str) -> None:
    store = tmp_path / name
    with client_for("embedded", path=store) as client:
        client.command("CREATE DATABASE IF NOT EXISTS raw")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert (store / "metadata").is_dir()


def test_a_store_path_the_engine_cannot_open_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(StoreUnavailableError, match="holds a '\\?'"),
        client_for("embedded", path=tmp_path / "x?mode=ro"),
    ):
        pass
    assert list(tmp_path.iterdir()) == []
