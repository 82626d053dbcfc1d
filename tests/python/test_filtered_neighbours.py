"""Filtered neighbours: K rows that all pass the filter, even for a filter keeping 1 %."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bildsuche.dbt import run_dbt
from bildsuche.errors import DbtRunError
from bildsuche.store import client_for
from datasets_helpers import clustered_embeddings, conversions_table, photos_table
from seeds_loader import load

pytestmark = pytest.mark.slow

N = 2000
K = 10
COUNTRIES = ("Germany", "France", "Japan", "Chile")


@dataclass
class Photos:
    ids: list[str]
    x: np.ndarray
    photographer: list[str]
    country: list[str | None]
    submitted: list[str]
    tags: dict[str, set[str]]
    colours: dict[str, set[str]]
    downloads: dict[str, int]
    search_keywords: dict[str, set[str]]


def write_dataset(directory: Path) -> Photos:
    rng = np.random.default_rng(11)
    ids = [f"ph{i:05d}" for i in range(N)]
    x = clustered_embeddings(N, 512, rng)
    # 1 % of the photos are by 'rare_eye'; every tenth has the tag 'lighthouse'.
    photographer = ["rare_eye" if i % 100 == 7 else f"user{i % 37}" for i in range(N)]
    country = [None if i % 9 == 0 else COUNTRIES[i % len(COUNTRIES)] for i in range(N)]
    submitted = [f"{2015 + i % 8}-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00.000" for i in range(N)]
    tags = {pid: ({"lighthouse"} if i % 10 == 3 else set()) | {"Coast "} for i, pid in enumerate(ids)}
    colours = {pid: {("Blue" if i % 2 else "grey")} for i, pid in enumerate(ids)}
    conversions = [(pid, "Beach" if i % 4 == 0 else "sky") for i, pid in enumerate(ids) for _ in range(i % 5)]
    table = photos_table(ids, x)
    for name, values in (
        ("photographer_username", photographer),
        ("photo_location_country", country),
        ("photo_submitted_at", submitted),
    ):
        table = table.append_column(name, pa.array(values, pa.string()))
    directory.mkdir(parents=True)
    pq.write_table(table, directory / "photos.parquet")
    pq.write_table(conversions_table(conversions), directory / "conversions.parquet")
    tag_rows = [(pid, t) for pid, ts in tags.items() for t in sorted(ts)]
    pq.write_table(
        pa.table({"photo_id": [r[0] for r in tag_rows], "keyword": [r[1] for r in tag_rows]}),
        directory / "keywords.parquet",
    )
    pq.write_table(
        pa.table({"photo_id": list(colours), "keyword": [next(iter(c)) for c in colours.values()]}),
        directory / "colors.parquet",
    )
    downloads = {pid: 0 for pid in ids}
    search_keywords: dict[str, set[str]] = {pid: set() for pid in ids}
    for pid, kw in conversions:
        downloads[pid] += 1
        search_keywords[pid].add(kw.lower())
    return Photos(ids, x, photographer, country, submitted, tags, colours, downloads, search_keywords)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Photos, Path]]:
    root = tmp_path_factory.mktemp("filtered")
    photos = write_dataset(root / "dataset")
    path = root / "store"
    with client_for("embedded", path=path) as client:
        load(client, root / "dataset")
    run_dbt(["build", "--exclude", "photo_neighbours+"], db_path=path, quiet=True)
    yield photos, path


def exact(photos: Photos, target: str, keep: list[bool], k: int) -> list[str]:
    t = photos.ids.index(target)
    dist = 1.0 - photos.x @ photos.x[t]
    order = [i for i in np.argsort(dist, kind="stable") if keep[i] and i != t]
    return [photos.ids[i] for i in order[:k]]


def marts(path: Path, **dbt_vars: Any) -> list[tuple[Any, ...]]:
    run_dbt(["run", "--select", "top_k_neighbours+"], db_path=path, dbt_vars=dbt_vars, quiet=True)
    with client_for("embedded", path=path) as client:
        return list(
            client.query("select photo_id, dist, rank from analytics.top_k_neighbours order by rank").result_rows
        )


VIEW = (
    "select photo_id from analytics.filtered_neighbours(photo_id = {p:String}, k = {k:UInt32}, keyword = '',"
    " colour = {colour:String}, country = '', photographer = {photographer:String}, date_from = '',"
    " date_to = {date_to:String}, min_downloads = 0)"
)


def view(
    path: Path,
    target: str,
    k: int = K,
    colour: str = "",
    photographer: str = "",
    date_to: str = "",
    explain: bool = False,
) -> Any:
    """The view's photo ids for `target`, or its EXPLAIN (indexes) as one text."""
    parameters = {"p": target, "k": k, "colour": colour, "photographer": photographer, "date_to": date_to}
    settings = {"vector_search_with_rescoring": 1}
    with client_for("embedded", path=path) as client:
        if explain:
            rows = client.query("explain indexes = 1 " + VIEW, parameters=parameters, settings=settings).result_rows
            return "\n".join(r[0] for r in rows)
        return [r[0] for r in client.query(VIEW, parameters=parameters, settings=settings).result_rows]


def ranked_photos(plan: str) -> int:
    """How many photos' vectors the view ranks (read by primary key), from its `explain indexes = 1`
    plan: the candidates of the index search that pass, or every photo that passes."""
    (read,) = plan.split("ReadFromMergeTree (analytics.photos)")[1:]
    found = re.search(r"Condition: \(photo_id in (\d+)-element set\)", read)
    assert found, read
    return int(found.group(1))


def test_a_frequent_filter_is_answered_by_the_index_and_a_rare_one_exactly(store: tuple[Photos, Path]) -> None:
    photos, path = store
    blue = [i % 2 == 1 for i in range(N)]
    # Half the photos pass: only the index's nearest photos that pass are ranked (about
    # overfetch * (k + 1) of the 2 * 4 * (k + 1) fetched), not the 1,000 blue photos.
    assert 0 < ranked_photos(view(path, "ph00042", colour="blue", explain=True)) <= 2 * 4 * (K + 1)
    for target in ("ph00042", "ph01001", "ph01998"):
        assert view(path, target, colour="blue") == exact(photos, target, blue, K)
    # 1 % pass: more candidates would be needed than an index search answers, so every photo
    # that passes is ranked.
    assert ranked_photos(view(path, "ph00042", photographer="rare_eye", explain=True)) == N // 100


def test_the_share_that_passes_is_estimated_from_a_small_sample_of_photos(store: tuple[Photos, Path]) -> None:
    photos, path = store
    # The choice reads the first 100 photos by id alone (the least allowed), not every photo, and
    # at most 100 candidates may be fetched: a filter keeping 7 photos in 8 (submitted before 2022)
    # is answered by the index, one keeping 1 in 8 (before 2016) by exact search, as the whole
    # collection's shares would decide.
    dbt_vars = {"filtered_share_sample": 100, "filtered_max_candidates": 100}
    run_dbt(["run", "--select", "filtered_neighbours"], db_path=path, dbt_vars=dbt_vars, quiet=True)
    try:
        for date_to, by_index in (("2021-12-31", True), ("2015-12-31", False)):
            keep = [s[:10] <= date_to for s in photos.submitted]
            ranked = ranked_photos(view(path, "ph01500", date_to=date_to, explain=True))
            assert ranked <= 2 * 4 * (K + 1) if by_index else ranked == sum(keep)
            assert view(path, "ph01500", date_to=date_to) == exact(photos, "ph01500", keep, K)
    finally:
        run_dbt(["run", "--select", "filtered_neighbours"], db_path=path, quiet=True)


def test_an_index_search_that_leaves_too_few_passing_photos_falls_back_to_exact_search(
    store: tuple[Photos, Path],
) -> None:
    photos, path = store
    blue = [i % 2 == 1 for i in range(N)]
    # Fetch only about k + 1 passing photos' worth of candidates: for some targets fewer than k pass.
    run_dbt(["run", "--select", "filtered_neighbours"], db_path=path, dbt_vars={"filtered_overfetch": 1}, quiet=True)
    try:
        wanted = (K + 1) * 2
        targets = [f"ph{i:05d}" for i in range(0, 400, 13)]
        short = 0
        for target in targets:
            t = photos.ids.index(target)
            nearest = np.argsort(1.0 - photos.x @ photos.x[t], kind="stable")[:wanted]
            short += sum(1 for i in nearest if blue[i] and i != t) < K
            assert view(path, target, colour="blue") == exact(photos, target, blue, K)
        assert short > 0  # the fallback was needed, and gave k exact rows
    finally:
        run_dbt(["run", "--select", "filtered_neighbours"], db_path=path, quiet=True)


def test_a_one_percent_filter_still_yields_k_rows(store: tuple[Photos, Path]) -> None:
    photos, path = store
    keep = [p == "rare_eye" for p in photos.photographer]
    assert sum(keep) == N // 100
    rows = marts(path, target_photo_id="ph00042", top_k=K, filter_photographer="rare_eye")
    assert [r[2] for r in rows] == list(range(1, K + 1))
    assert [r[0] for r in rows] == exact(photos, "ph00042", keep, K)


def test_filters_combine(store: tuple[Photos, Path]) -> None:
    photos, path = store

    def passes(i: int) -> bool:
        pid = photos.ids[i]
        keywords = {t.strip().lower() for t in photos.tags[pid]} | photos.search_keywords[pid]
        return (
            "lighthouse" in keywords
            and "blue" in photos.colours[pid] | {c.lower() for c in photos.colours[pid]}
            and photos.country[i] == "Chile"
            and "2017-01-01" <= photos.submitted[i][:10] <= "2021-06-30"
            and photos.downloads[pid] >= 3
        )

    keep = [passes(i) for i in range(N)]
    assert K <= sum(keep) <= N // 20
    rows = marts(
        path,
        target_photo_id="ph00005",
        top_k=K,
        filter_keyword=" LIGHTHOUSE",
        filter_colour="blue",
        filter_country="chile",
        filter_date_from="2017-01-01",
        filter_date_to="2021-06-30",
        filter_min_downloads=3,
    )
    assert [r[0] for r in rows] == exact(photos, "ph00005", keep, K)


def test_search_keywords_filter_and_the_view_agrees_with_the_mart(store: tuple[Photos, Path]) -> None:
    photos, path = store
    keep = ["beach" in photos.search_keywords[pid] for pid in photos.ids]
    rows = marts(path, target_photo_id="ph00100", top_k=K, filter_keyword="beach")
    assert [r[0] for r in rows] == exact(photos, "ph00100", keep, K)
    with client_for("embedded", path=path) as client:
        view = client.query(
            "select photo_id from analytics.filtered_neighbours(photo_id = 'ph00100', k = 10, keyword = 'beach',"
            " colour = '', country = '', photographer = '', date_from = '', date_to = '', min_downloads = 0)"
        ).result_rows
    assert [r[0] for r in view] == [r[0] for r in rows]


def test_a_filter_nothing_passes_gives_no_rows(store: tuple[Photos, Path]) -> None:
    _, path = store
    assert marts(path, target_photo_id="ph00100", filter_keyword="x' or 1=1 --") == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("filter_date_from", "2020-13-01"),
        ("filter_date_to", "yesterday"),
        ("filter_date_from", "2020-01-01' or 1=1 --"),
        ("filter_min_downloads", "-1"),
        ("filter_min_downloads", "3 or 1=1"),
    ],
)
def test_bad_filter_vars_are_refused(store: tuple[Photos, Path], name: str, value: str) -> None:
    _, path = store
    with pytest.raises(DbtRunError, match=name):
        marts(path, target_photo_id="ph00100", **{name: value})
