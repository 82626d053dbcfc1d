"""Hold-out evaluation of analytics.keyword_suggestions: hide the downloads of a sample of
photos, let the mart suggest keywords for them from their neighbours, and measure how many of
their real search keywords the suggestions find.

    python benchmarks/keyword_holdout.py --sample 2000                 # the built-in sample, demo CLIP model
    python benchmarks/keyword_holdout.py --dataset DIR                 # any data set `bildsuche build` wrote

For Unsplash Lite (real photos, real searches), build the data set with the real CLIP model
first (downloads 25k thumbnails, then embeds them):

    bildsuche build unsplash-research-dataset-lite-latest.zip --out data/lite --model openai/clip-vit-base-patch32
    python benchmarks/keyword_holdout.py --dataset data/lite --holdout 0.1

A copy of the data set goes into a temporary store with the held-out photos' conversions
(and their tags, raw.keywords) removed, as if they were new photos nobody has found yet; `dbt
run` builds keyword_suggestions (and what it needs) there.  For each held-out photo, its real
keywords are the distinct search keywords of its hidden conversions.  Reported for k = 1..10:

* recall@k: the share of a photo's real keywords among its k suggestions, averaged over photos;
* download recall@k: the share of its hidden downloads whose keyword is among the k;
* hit rate@k: the share of photos with at least one real keyword among the k;

for the mart and for a baseline that suggests the k keywords most downloaded overall.  On
generated data (the sample) the figures are a property of the generator, which draws a photo's
keywords from its picture's category; they show that the pipeline works, not how good the
suggestions are on real photos.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine

KS = tuple(range(1, 11))
DEMO_NOTE = (
    "embeddings from the randomly initialised demo CLIP model on generated pictures: these figures are a "
    "property of the sample generator, not of CLIP; run this on Unsplash Lite for real ones"
)


def normalised(keywords: pa.Array) -> pa.Array:
    return pc.utf8_lower(pc.utf8_trim_whitespace(keywords))


def split(dataset: Path, out: Path, fraction: float, seed: int) -> tuple[set[str], pa.Table]:
    """Copy ``dataset`` to ``out`` without the conversions and tags of a random ``fraction`` of
    the downloaded photos; return those photos and their hidden conversions (photo_id, keyword)."""
    out.mkdir(parents=True)
    conversions = pq.read_table(dataset / "conversions.parquet", columns=["id", "photo_id", "keyword"])
    conversions = conversions.set_column(2, "keyword", normalised(conversions.column("keyword")))
    conversions = conversions.filter(pc.not_equal(conversions.column("keyword"), ""))
    downloaded = np.unique(conversions.column("photo_id").to_numpy(zero_copy_only=False))
    rng = np.random.default_rng(seed)
    held = set(rng.choice(downloaded, size=max(1, int(len(downloaded) * fraction)), replace=False).tolist())
    mask = pc.is_in(conversions.column("photo_id"), pa.array(sorted(held)))
    pq.write_table(conversions.filter(pc.invert(mask)), out / "conversions.parquet")
    for path in dataset.glob("*.parquet"):
        if path.name == "keywords.parquet":
            tags = pq.read_table(path)
            pq.write_table(
                tags.filter(pc.invert(pc.is_in(tags.column("photo_id"), pa.array(sorted(held))))), out / path.name
            )
        elif path.name != "conversions.parquet":
            (out / path.name).symlink_to(path.resolve())
    return held, conversions.filter(mask).select(["photo_id", "keyword"])


def evaluate(
    suggested: dict[str, list[str]], hidden: pa.Table, popular: list[str]
) -> dict[str, dict[str, list[float]]]:
    per_photo: dict[str, dict[str, int]] = {}
    for pid, kw in zip(hidden.column("photo_id").to_pylist(), hidden.column("keyword").to_pylist(), strict=True):
        per_photo.setdefault(pid, {}).setdefault(kw, 0)
        per_photo[pid][kw] += 1
    result: dict[str, dict[str, list[float]]] = {}
    for method in ("suggestions", "most downloaded"):
        curves: dict[str, list[float]] = {"recall": [], "download_recall": [], "hit_rate": []}
        for k in KS:
            recall, weighted, hits = [], [], []
            for pid, counts in per_photo.items():
                top = set((suggested.get(pid, []) if method == "suggestions" else popular)[:k])
                found = [kw for kw in counts if kw in top]
                recall.append(len(found) / len(counts))
                weighted.append(sum(counts[kw] for kw in found) / sum(counts.values()))
                hits.append(1.0 if found else 0.0)
            curves["recall"].append(float(np.mean(recall)))
            curves["download_recall"].append(float(np.mean(weighted)))
            curves["hit_rate"].append(float(np.mean(hits)))
        result[method] = curves
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="a data set folder (photos.parquet, conversions.parquet, ...)")
    source.add_argument("--sample", type=int, metavar="N", help="build the built-in sample of N photos (demo model)")
    parser.add_argument("--holdout", type=float, default=0.1, help="share of the downloaded photos held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--neighbours", type=int, default=10, help="dbt var suggestion_neighbours (and neighbours_k)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from bildsuche.dataset import PHOTOS_FILE, recorded_model
    from bildsuche.dbt import environment, run_dbt
    from bildsuche.store import client_for
    from python_embed.build import build
    from python_embed.demo_model import DEMO_MODEL_NAME, resolve_model
    from python_embed.embedder import ClipEmbedder
    from seeds_loader import load

    work = Path(tempfile.mkdtemp(prefix="bildsuche-holdout-"))
    try:
        with environment({"BILDSUCHE_DATA_DIR": str(work / "data")}):
            dataset = args.dataset
            if dataset is None:
                dataset = work / "sample"
                model = resolve_model("demo")
                build(f"sample:{args.sample}", dataset, lambda: ClipEmbedder(model))
            held, hidden = split(dataset, work / "split", args.holdout, args.seed)
            model_name = recorded_model(pq.read_schema(dataset / PHOTOS_FILE).metadata) or "unknown"
            store = work / "store"
            with client_for("embedded", path=store) as client:
                load(client, work / "split")
            dbt_vars = {"neighbours_k": max(10, args.neighbours), "suggestion_neighbours": args.neighbours,
                        "suggestions_per_photo": max(KS)}  # fmt: skip
            started = time.perf_counter()
            with environment({"DBT_TARGET_PATH": str(work / "target"), "DBT_LOG_PATH": str(work / "logs")}):
                run_dbt(["run", "--select", "+keyword_suggestions"], db_path=store, dbt_vars=dbt_vars, quiet=True)
            seconds = time.perf_counter() - started
            with client_for("embedded", path=store) as client:
                rows = client.query(
                    "SELECT photo_id, groupArray(keyword) FROM (SELECT photo_id, keyword FROM "
                    "analytics.keyword_suggestions WHERE photo_id IN {held:Array(String)} ORDER BY photo_id, rank) "
                    "GROUP BY photo_id",
                    parameters={"held": sorted(held)},
                ).result_rows
                popular = [
                    str(r[0])
                    for r in client.query(
                        f"SELECT keyword FROM analytics.stg_conversions WHERE keyword != '' "
                        f"GROUP BY keyword ORDER BY count() DESC, keyword LIMIT {max(KS)}"
                    ).result_rows
                ]
                photos = int(client.query("SELECT count() FROM analytics.photos").result_rows[0][0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    curves = evaluate({str(p): list(kws) for p, kws in rows}, hidden, popular)
    result = {
        "machine": machine(),
        "source": str(args.dataset) if args.dataset else f"sample:{args.sample}",
        "model": model_name,
        "photos": photos,
        "held_out_photos": len(held),
        "hidden_downloads": hidden.num_rows,
        "with_suggestions": len(rows),
        "suggestion_neighbours": args.neighbours,
        "dbt_run_s": round(seconds, 2),
        "k": list(KS),
        "curves": curves,
        "note": DEMO_NOTE if model_name == DEMO_MODEL_NAME else "",
    }
    print(json.dumps(result, indent=2))
    at5 = {m: c["recall"][4] for m, c in curves.items()}
    print(
        f"\nrecall@5 of the held-out photos' real keywords: {at5['suggestions']:.3f} with keyword_suggestions, "
        f"{at5['most downloaded']:.3f} with the 5 most downloaded keywords ({len(held)} photos held out of {photos})"
    )
    if result["note"]:
        print(f"note: {result['note']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
