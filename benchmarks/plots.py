"""PNG bar charts of the benchmark results, drawn with Pillow (matplotlib is not a dependency).

Reads the files written with --json by the scripts and draws one chart each:

    python benchmarks/plots.py --topk 25k=topk25k.json 1M=topk1m.json --filtered filtered1m.json \
        --dbt 1M=dbt1m.json --out docs/img
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, BAR, GAP, LABEL_W, MARGIN = 1000, 22, 8, 430, 16


def bars(title: str, rows: list[tuple[str, float, str]], path: Path) -> None:
    """Horizontal bars: (label, value, text after the bar), longest value across the plot width."""
    font = ImageFont.load_default(size=14)
    height = MARGIN * 3 + 20 + len(rows) * (BAR + GAP)
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN), title, fill="black", font=ImageFont.load_default(size=16))
    top = max(value for _, value, _ in rows) or 1.0
    span = WIDTH - LABEL_W - 2 * MARGIN - 150
    y = MARGIN * 2 + 20
    for label, value, text in rows:
        draw.text((MARGIN, y + 3), label, fill="black", font=font)
        length = max(1, int(span * value / top))
        draw.rectangle((LABEL_W, y, LABEL_W + length, y + BAR), fill="#4C72B0")
        draw.text((LABEL_W + length + 6, y + 3), text, fill="black", font=font)
        y += BAR + GAP
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def sized(items: list[str]) -> list[tuple[str, Path]]:
    return [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topk", nargs="*", default=[], help="SIZE=topk_queries.json")
    parser.add_argument("--filtered", type=Path)
    parser.add_argument("--dbt", nargs="*", default=[], help="SIZE=dbt_build.json")
    parser.add_argument("--holdout", nargs="*", default=[], help="NAME=keyword_holdout.json")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    for size, path in sized(args.topk):
        rows = [
            (r["method"].replace("M 32 ef_construction 128, ", ""), r["p50_ms"],
             f"{r['p50_ms']:.2f} ms, recall {r['recall_at_10']:.3f}")
            for r in json.loads(path.read_text())
        ]  # fmt: skip
        bars(f"Top-10 query p50 latency at {size} vectors (ms; recall@10 after each bar)", rows,
             args.out / f"topk_{size}.png")  # fmt: skip
    if args.filtered:
        rows = [
            (f"{r['filter'].split(' (')[0]} {r['filter'].split('(')[1].split(',')[0]}: {r['strategy']}",
             r["recall_at_10"], f"recall {r['recall_at_10']:.3f}, {r['p50_ms']:.0f} ms")
            for r in json.loads(args.filtered.read_text())
        ]  # fmt: skip
        bars("Filtered top-10: recall@10 by filter share and strategy (p50 after each bar)", rows,
             args.out / "filtered.png")  # fmt: skip
    for size, path in sized(args.dbt):
        result = json.loads(path.read_text())
        nodes = sorted(result["nodes"].items(), key=lambda kv: -kv[1])[:10]
        bars(f"dbt build at {size} photos: the 10 slowest nodes (s; wall {result['wall_s']:.0f} s)",
             [(name[:55], s, f"{s:.1f} s") for name, s in nodes], args.out / f"dbt_{size}.png")  # fmt: skip

    for name, path in sized(args.holdout):
        result = json.loads(path.read_text())
        rows = [
            (f"{method}, recall@{k}", result["curves"][method]["recall"][k - 1],
             f"{result['curves'][method]['recall'][k - 1]:.3f}")
            for k in (1, 3, 5, 10) for method in ("suggestions", "most downloaded")
        ]  # fmt: skip
        demo = " (demo model, generated photos)" if result.get("note") else ""
        bars(f"Held-out photos' real keywords found by keyword_suggestions{demo}: {result['held_out_photos']} "
             f"of {result['photos']} photos", rows, args.out / f"holdout_{name}.png")  # fmt: skip


if __name__ == "__main__":
    main()
