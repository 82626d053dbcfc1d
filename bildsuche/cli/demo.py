"""`bildsuche demo`: the offline end-to-end run, printed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bildsuche.cli.report import print_report

if TYPE_CHECKING:
    from bildsuche.demo import DemoResult

INSIGHT_TITLES = {
    "keyword_suggestions": "those of the target",
    "underexposed_lookalikes": "the largest gaps",
    "keyword_search_relevance": "the keywords a text search serves best",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", type=Path, help="embedded store directory (default: $BILDSUCHE_DB_PATH or data/demo.chdb)"
    )
    parser.add_argument("--model", help="CLIP model name or directory (default: a generated demo model)")
    parser.add_argument("--photos", type=int, default=320, help="sample photos to generate (default 320)")
    parser.add_argument("--top-k", type=int, default=10, help="neighbours per target (default 10)")
    parser.add_argument("--target-photo-id", help="target photo (default: drawn reproducibly)")
    parser.add_argument("--quiet", action="store_true", help="hide dbt's log lines")
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="also write the HTML report and contact sheet to DIR"
    )


def print_demo(result: DemoResult) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_colwidth", 60, "display.max_rows", 200):
        for name, frame in result.marts.items():
            print(f"\n== analytics.{name} ({len(frame)} rows)")
            print(frame.to_string(index=False) if len(frame) else "(empty)")
        for name, (frame, total) in result.insights.items():
            print(f"\n== analytics.{name} ({total} rows; {INSIGHT_TITLES[name]})")
            print(frame.to_string(index=False) if len(frame) else "(empty)")
    print()
    print(f"store: {result.store}  ({result.photos} photos, {result.conversions} conversions)")
    print(f"data set: {result.dataset}  (built by `bildsuche build {result.source} --out {result.dataset}`)")
    if result.model_is_demo:
        print(
            "note: embeddings came from a small randomly initialised demo CLIP model (real transformers\n"
            "      classes, random weights), so neighbours reflect colour and layout, not meaning.\n"
            "      For real CLIP embeddings run `bildsuche demo --model openai/clip-vit-base-patch32`\n"
            "      (needs the Hugging Face hub, or a local copy of the model).\n"
            "      The insight marts (suggestions, look-alikes, search relevance) likewise describe a\n"
            "      random model on generated photos, not what real CLIP would find."
        )
    else:
        print(f"model: {result.model}")
    print(f"explore further: BILDSUCHE_DB_PATH={result.store} bildsuche dbt build --vars '{{top_k: 5}}'")


def command(args: argparse.Namespace) -> int:
    from bildsuche.demo import run_demo

    def step(msg: str) -> None:
        print(f"-- {msg}", file=sys.stderr, flush=True)

    result = run_demo(
        store=args.store,
        model=args.model,
        photos=args.photos,
        top_k=args.top_k,
        target_photo_id=args.target_photo_id,
        step=step,
        dbt_quiet=args.quiet,
    )
    print_demo(result)
    if args.report:
        from bildsuche.report import make_report

        # The sample's photos are local files: nothing to download.
        print_report(make_report(args.report, store=result.store, dataset=result.dataset, fetch=False))
    return 0
