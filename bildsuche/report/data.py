"""What the report shows, read from the dbt marts of the store.

Every value that reaches SQL is a bound parameter; the names of the marts
are constants of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from bildsuche.errors import MartsMissingError

SCHEMA = "analytics"
# The marts every report needs; the saved-search ones are shown when present.
REQUIRED = ("photos", "top_k_neighbours", "conversions_per_candidate", "keyword_breakdown")
OPTIONAL = ("search_results", "stg_search_queries", "stg_conversions", "keyword_suggestions", "underexposed_lookalikes")
LOOKALIKES_SHOWN = 12  # the largest gaps of underexposed_lookalikes
MODEL_COLUMN = "embed_model"  # written by newer loaders; older stores lack it
RUN_DBT = "run `dbt build` on this store (or `bildsuche demo` for a sample)"


@dataclass(frozen=True)
class Photo:
    """One tile of the report: a photo with what the marts say about it."""

    photo_id: str
    url: str
    downloads: int
    dist: float | None = None  # None for the target itself
    rank: int | None = None


@dataclass(frozen=True)
class KeywordCount:
    keyword: str
    downloads: int


@dataclass(frozen=True)
class SavedSearch:
    name: str
    results: list[Photo]
    kind: str | None = None  # 'text' or 'image', when stg_search_queries is there
    query: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class Suggestion:
    keyword: str
    score: float
    neighbours: int
    neighbour_downloads: int


@dataclass(frozen=True)
class Lookalike:
    """An overlooked photo: its own downloads against its look-alikes' median."""

    photo: Photo
    neighbour_downloads: float
    lookalikes: int
    suggested_keywords: list[str]


@dataclass
class ReportData:
    target: Photo
    neighbours: list[Photo]
    keyword_photo_id: str | None
    keywords: list[KeywordCount]
    searches: list[SavedSearch] = field(default_factory=list)
    has_search_mart: bool = True
    photo_models: list[str] = field(default_factory=list)  # from the photos' model column, when present
    # None: the store has no such mart (it is built on the embedded target only).
    suggestions: list[Suggestion] | None = None  # keyword_suggestions of the target
    lookalikes: list[Lookalike] | None = None
    lookalikes_total: int = 0


def _rows(client: Client, sql: str, **params: Any) -> list[Sequence[Any]]:
    return list(client.query(sql, parameters=params or None).result_rows)


def present_tables(client: Client) -> set[str]:
    names = REQUIRED + OPTIONAL
    rows = _rows(client, "SELECT name FROM system.tables WHERE database = {db:String}", db=SCHEMA)
    return {str(r[0]) for r in rows} & set(names)


def _target(client: Client, tables: set[str]) -> Photo:
    rows = _rows(client, f"SELECT any(target_photo_id) FROM {SCHEMA}.top_k_neighbours HAVING count() > 0")
    if not rows:
        raise MartsMissingError(f"{SCHEMA}.top_k_neighbours is empty: {RUN_DBT}")
    target = str(rows[0][0])
    url = _rows(client, f"SELECT photo_image_url FROM {SCHEMA}.photos WHERE photo_id = {{p:String}} LIMIT 1", p=target)
    downloads = 0
    if "stg_conversions" in tables:
        counted = _rows(client, f"SELECT count() FROM {SCHEMA}.stg_conversions WHERE photo_id = {{p:String}}", p=target)
        downloads = int(counted[0][0])
    return Photo(target, str(url[0][0]) if url else "", downloads)


def _neighbours(client: Client) -> list[Photo]:
    # A LEFT JOIN fills a neighbour absent from conversions_per_candidate with 0 downloads.
    rows = _rows(
        client,
        f"SELECT n.photo_id, n.photo_image_url, c.downloads, n.dist, n.rank FROM {SCHEMA}.top_k_neighbours AS n "
        f"LEFT JOIN {SCHEMA}.conversions_per_candidate AS c ON n.photo_id = c.photo_id ORDER BY n.rank",
    )
    return [Photo(str(p), str(u or ""), int(d or 0), float(dist), int(rank)) for p, u, d, dist, rank in rows]


def _searches(client: Client, tables: set[str]) -> list[SavedSearch]:
    about: dict[str, tuple[str, str, str]] = {}
    if "stg_search_queries" in tables:
        for name, kind, query, model in _rows(
            client, f"SELECT name, kind, query, model FROM {SCHEMA}.stg_search_queries ORDER BY name"
        ):
            about[str(name)] = (str(kind), str(query), str(model))
    results: dict[str, list[Photo]] = {}
    for name, rank, pid, url, dist, downloads in _rows(
        client,
        f"SELECT query_name, rank, photo_id, photo_image_url, dist, downloads FROM {SCHEMA}.search_results "
        "ORDER BY query_name, rank",
    ):
        photo = Photo(str(pid), str(url or ""), int(downloads), float(dist), int(rank))
        results.setdefault(str(name), []).append(photo)
    return [SavedSearch(name, photos, *about.get(name, (None, None, None))) for name, photos in results.items()]


def _photo_models(client: Client) -> list[str]:
    has_column = _rows(
        client,
        "SELECT count() FROM system.columns WHERE database = {db:String} AND table = 'photos' AND name = {c:String}",
        db=SCHEMA,
        c=MODEL_COLUMN,
    )
    if not int(has_column[0][0]):
        return []
    rows = _rows(client, f"SELECT DISTINCT {MODEL_COLUMN} FROM {SCHEMA}.photos WHERE {MODEL_COLUMN} != '' LIMIT 5")
    return sorted(str(r[0]) for r in rows if r[0] is not None)


def _suggestions(client: Client, target: str) -> list[Suggestion]:
    rows = _rows(
        client,
        f"SELECT keyword, score, neighbours, neighbour_downloads FROM {SCHEMA}.keyword_suggestions "
        "WHERE photo_id = {p:String} ORDER BY rank",
        p=target,
    )
    return [Suggestion(str(kw), float(score), int(n), int(d)) for kw, score, n, d in rows]


def _lookalikes(client: Client) -> tuple[list[Lookalike], int]:
    rows = _rows(
        client,
        "SELECT photo_id, photo_image_url, downloads, neighbour_downloads, lookalikes, suggested_keywords, rank "
        f"FROM {SCHEMA}.underexposed_lookalikes ORDER BY rank LIMIT {{n:UInt32}}",
        n=LOOKALIKES_SHOWN,
    )
    total = int(_rows(client, f"SELECT count() FROM {SCHEMA}.underexposed_lookalikes")[0][0])
    found = [
        Lookalike(Photo(str(p), str(u or ""), int(d), None, int(rank)), float(nd), int(n), [str(k) for k in kws])
        for p, u, d, nd, n, kws, rank in rows
    ]
    return found, total


def read_report_data(client: Client) -> ReportData:
    """The marts of the store behind ``client``; MartsMissingError when dbt has not built them."""
    tables = present_tables(client)
    missing = [name for name in REQUIRED if name not in tables]
    if missing:
        names = ", ".join(f"{SCHEMA}.{name}" for name in missing)
        raise MartsMissingError(f"the store has no {names}: {RUN_DBT}")
    keywords = _rows(
        client, f"SELECT photo_id, keyword, downloads FROM {SCHEMA}.keyword_breakdown ORDER BY downloads DESC, keyword"
    )
    has_search_mart = "search_results" in tables
    target = _target(client, tables)
    lookalikes, lookalikes_total = _lookalikes(client) if "underexposed_lookalikes" in tables else (None, 0)
    return ReportData(
        target=target,
        neighbours=_neighbours(client),
        keyword_photo_id=str(keywords[0][0]) if keywords else None,
        keywords=[KeywordCount(str(kw), int(n)) for _, kw, n in keywords],
        searches=_searches(client, tables) if has_search_mart else [],
        has_search_mart=has_search_mart,
        photo_models=_photo_models(client),
        suggestions=_suggestions(client, target.photo_id) if "keyword_suggestions" in tables else None,
        lookalikes=lookalikes,
        lookalikes_total=lookalikes_total,
    )
