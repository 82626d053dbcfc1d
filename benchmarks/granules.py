"""Re-scored top-10 latency against the granule size of the photos table.

With `vector_search_with_rescoring = 1` (exact float32 distances, as the
marts and the BI endpoint query) the engine reads every granule that holds
one of the index's candidates.  At 2 KiB a vector the granule size sets how
much that is, so the same vectors are loaded into one table per
`index_granularity`, each with the project's HNSW index, and the same query
photos are asked of each table in turn (alternating, so load drifts hit every
table alike); medians of the rounds' p50s.

    python benchmarks/granules.py --n 25000 --queries 200 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from dbt.adapters.chdb.engine import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hnsw_params import build_index, load_table
from measure import machine, median, timed_each, vector_literal
from synth import ClipLike

CONFIG = "bf16,32,128"  # the project's index (hnsw_quantization, hnsw_m, hnsw_ef_construction)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=25_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--granularities", type=int, nargs="*", default=[8192, 256, 64, 32])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    host = machine()
    x = ClipLike(args.n).all()
    queries = np.random.default_rng(2).choice(args.n, size=args.queries, replace=False)
    vectors = [vector_literal(x[q]) for q in queries]
    store = Path(tempfile.mkdtemp(prefix="bildsuche-granules-"))
    p50s: dict[int, list[float]] = {g: [] for g in args.granularities}
    answers: dict[int, list[list[int]]] = {}
    try:
        with connect(store) as client:
            client.command("CREATE DATABASE IF NOT EXISTS bench")
            for g in args.granularities:
                load_table(client, x, g, f"bench.photos_{g}")
                build_index(client, CONFIG, x.shape[1], f"bench.photos_{g}")
            settings = {"vector_search_with_rescoring": 1}
            sql = "SELECT id FROM bench.photos_{g} ORDER BY cosineDistance(photo_embed, {v}) LIMIT 11"
            for _ in range(args.rounds):
                for g in args.granularities:
                    client.query(sql.format(g=g, v=vectors[0]), settings=settings)  # warm: index into memory
                    latencies, found = timed_each(
                        lambda v, g=g: client.query(sql.format(g=g, v=v), settings=settings).result_rows, vectors
                    )
                    p50s[g].append(median(latencies))
                    answers[g] = [[r[0] for r in rows] for rows in found]
    finally:
        shutil.rmtree(store, ignore_errors=True)
    first = args.granularities[0]
    rows = []
    for g in args.granularities:
        same = sum(a == b for a, b in zip(answers[g], answers[first], strict=True))
        rows.append({"index_granularity": g, "p50_ms": round(median(p50s[g]), 2), "same_answers": same})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\nmachine: {host}; n={args.n}, queries={args.queries}, rounds={args.rounds}, index {CONFIG}, re-scored")
    print(f"| index_granularity | top-10 p50 ms (median of rounds) | answers equal to granularity {first}'s |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r['index_granularity']} | {r['p50_ms']:.2f} | {r['same_answers']}/{args.queries} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
