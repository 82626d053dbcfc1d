"""The offline end-to-end run, on the path users take with their own data:
`bildsuche build sample` -> `bildsuche load` -> `bildsuche keywords` -> `dbt build` -> the marts."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bildsuche import config
from bildsuche.dbt import run_dbt
from bildsuche.store import client_for
from python_embed.build import build
from python_embed.demo_model import DEMO_MODEL, resolve_model
from python_embed.embedder import ClipEmbedder
from python_embed.keywords import embed_keywords
from python_embed.sources import SAMPLE
from seeds_loader import load
from seeds_loader.keywords import frequent_keywords, save_keyword_embeddings

MARTS = ("top_k_neighbours", "conversions_per_candidate", "keyword_breakdown")
MART_ORDER = {
    "top_k_neighbours": "rank",
    "conversions_per_candidate": "downloads desc, rank",
    "keyword_breakdown": "downloads desc, keyword",
}
# The insight marts, a glimpse each: what they hold for the target, or their first rows.
INSIGHTS = {
    "keyword_suggestions": "SELECT * FROM analytics.keyword_suggestions WHERE photo_id = "
    "(SELECT any(target_photo_id) FROM analytics.top_k_neighbours) ORDER BY rank",
    "underexposed_lookalikes": "SELECT photo_id, downloads, neighbour_downloads, lookalikes, top_lookalike_id, "
    "suggested_keywords FROM analytics.underexposed_lookalikes ORDER BY rank LIMIT 5",
    "keyword_search_relevance": "SELECT keyword, searches, downloaded_photos, recall_at_k, mrr, best_rank "
    "FROM analytics.keyword_search_relevance ORDER BY mrr DESC, keyword LIMIT 5",
}

Step = Callable[[str], None]


@dataclass
class DemoResult:
    store: Path
    dataset: Path
    source: str
    model: str
    model_is_demo: bool
    photos: int
    conversions: int
    keywords_embedded: int = 0
    marts: dict[str, pd.DataFrame] = field(default_factory=dict)
    # name -> (a glimpse of the mart, its rows in all)
    insights: dict[str, tuple[pd.DataFrame, int]] = field(default_factory=dict)


def demo_store() -> Path:
    """$BILDSUCHE_DB_PATH when set, else a store of the demo's own beside the default one."""
    return config.db_path() if os.environ.get(config.DB_PATH_ENV, "").strip() else config.data_dir() / "demo.chdb"


def read_marts(store: Path) -> dict[str, pd.DataFrame]:
    with client_for("embedded", path=store) as client:
        return {name: client.query_df(f"SELECT * FROM analytics.{name} ORDER BY {MART_ORDER[name]}") for name in MARTS}


def read_insights(store: Path) -> dict[str, tuple[pd.DataFrame, int]]:
    with client_for("embedded", path=store) as client:
        return {
            name: (client.query_df(sql), int(client.query(f"SELECT count() FROM analytics.{name}").result_rows[0][0]))
            for name, sql in INSIGHTS.items()
        }


def embed_frequent_keywords(store: Path, embedder: ClipEmbedder) -> int:
    """`bildsuche keywords` on the demo's store: the keywords the relevance mart measures."""
    with client_for("embedded", path=store) as client:
        todo = frequent_keywords(
            client,
            embedder.name,
            min_searches=int(config.project_var("relevance_min_searches")),
            limit=config.DEFAULT_KEYWORD_LIMIT,
        )
        embedded = embed_keywords(embedder, todo.missing)
        save_keyword_embeddings(client, embedded)
    return len(embedded)


def run_demo(
    *,
    store: Path | None = None,
    model: str | None = None,
    photos: int = 320,
    top_k: int = 10,
    target_photo_id: str | None = None,
    step: Step | None = None,
    dbt_quiet: bool = False,
) -> DemoResult:
    say = step or (lambda _msg: None)
    store = store or demo_store()
    dataset = config.data_dir() / "demo" / "dataset"
    source = f"{SAMPLE}:{photos}"
    model_path = resolve_model(model or DEMO_MODEL)
    say(f"bildsuche build {source} --out {dataset} (CLIP model {model_path})")
    embedder = ClipEmbedder(model_path)
    built = build(source, dataset, lambda: embedder)
    say(f"bildsuche load {dataset} into {store}")
    with client_for("embedded", path=store) as client:
        loaded = load(client, dataset)
    say("bildsuche keywords (the most searched keywords, by the CLIP text tower)")
    keywords = embed_frequent_keywords(store, embedder)
    say("dbt build")
    dbt_vars: dict[str, Any] = {"top_k": top_k}
    if target_photo_id:
        dbt_vars["target_photo_id"] = target_photo_id
    run_dbt(["build"], db_path=store, dbt_vars=dbt_vars, quiet=dbt_quiet)
    return DemoResult(
        store=store,
        dataset=dataset,
        source=source,
        model=built.model,
        model_is_demo=built.model_is_demo,
        photos=loaded.rows.get("photos", 0),
        conversions=loaded.rows.get("conversions", 0),
        keywords_embedded=keywords,
        marts=read_marts(store),
        insights=read_insights(store),
    )
