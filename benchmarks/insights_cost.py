"""What the three insight marts cost: keyword_suggestions, underexposed_lookalikes and
keyword_search_relevance on a generated store.

Generates N photos (CLIP-shaped vectors) and M conversions (benchmarks/synth.py:
Zipf-drawn photos and keywords), loads them, stores CLIP-shaped vectors for the
`--keywords` most searched keywords (what `bildsuche keywords` would embed; the
photos record no model, so the keywords are filed under 'unknown' as well),
then runs `dbt run` of the marts and what they are built on in a subprocess and
reads each node's time from run_results.json.  Medians of --repeats runs on
one store (the upstream models are rebuilt every time too).

    python benchmarks/insights_cost.py --photos 25000 --conversions 1000000 --keywords 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dbt_build import build
from measure import machine, median, timed
from synth import ClipLike, write_conversions, write_photos

MARTS = ("keyword_suggestions", "underexposed_lookalikes", "keyword_search_relevance")


def store_keyword_vectors(store: Path, keywords: int, min_searches: int) -> int:
    from bildsuche.dataset import KeywordEmbedding
    from bildsuche.store import client_for
    from seeds_loader.keywords import frequent_keywords, save_keyword_embeddings

    with client_for("embedded", path=store) as client:
        todo = frequent_keywords(client, "unknown", min_searches=min_searches, limit=keywords)
        x = ClipLike(len(todo.missing), seed=23).chunk(0, len(todo.missing))
        save_keyword_embeddings(
            client, [KeywordEmbedding("unknown", kw, v.tolist()) for kw, v in zip(todo.missing, x, strict=True)]
        )
    return len(todo.missing)


def mart_rows(store: Path) -> list[int]:
    from bildsuche.store import client_for

    with client_for("embedded", path=store) as client:
        return [int(client.query(f"SELECT count() FROM analytics.{mart}").result_rows[0][0]) for mart in MARTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=25_000)
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--keywords", type=int, default=1000, help="keywords with vectors (bildsuche keywords' limit)")
    parser.add_argument("--min-searches", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bildsuche-insights-"))
    data, store = work / "data", work / "store"
    try:
        data.mkdir()
        write_photos(data, args.photos)
        write_conversions(data, args.conversions, args.photos)
        load = timed([sys.executable, "-m", "seeds_loader", str(data)], env={"BILDSUCHE_DB_PATH": str(store)})
        keywords = store_keyword_vectors(store, args.keywords, args.min_searches)
        select = ["--select", *(f"+{mart}" for mart in MARTS)]
        runs = [build(work, store, select, "run") for _ in range(args.repeats)]
        rows = mart_rows(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    nodes = {name: median([r["nodes"].get(name, 0.0) for r in runs]) for name in runs[0]["nodes"]}
    result = {
        "photos": args.photos,
        "conversions": args.conversions,
        "keywords_embedded": keywords,
        "repeats": args.repeats,
        "load_s": load.seconds,
        "wall_s": median([r["wall_s"] for r in runs]),
        "peak_rss_mib": median([r["peak_rss_mib"] for r in runs]),
        "rows": dict(zip(MARTS, rows, strict=True)),
        "marts_s": {mart: nodes[mart] for mart in MARTS},
        "nodes": nodes,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
