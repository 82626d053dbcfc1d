"""Requests/s and latency of `bildsuche serve` under a bounded loopback load.

Builds a store of CLIP-shaped vectors (synthetic, 512-d, clustered) with
conversions, runs `dbt build` on it, starts `bildsuche serve` with each
`--max-concurrent` value given, and lets C client threads (one HTTP
keep-alive session each) send a mix of mart reads and top-K queries for a
fixed time.  Every answer is checked against the expected one.

    python benchmarks/serve_load.py --photos 25000 --clients 8 --seconds 20 --max-concurrent 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from datasets_helpers import built_store, write_synthetic
from serve_helpers import hammer, peak_rss_mib, start_serve, stop

QUERIES = [
    "SELECT rank, photo_id, dist FROM analytics.top_k_neighbours ORDER BY rank FORMAT TabSeparated",
    "SELECT photo_id, downloads FROM analytics.conversions_per_candidate "
    "ORDER BY downloads DESC, rank FORMAT TabSeparated",
    "SELECT keyword, downloads FROM analytics.keyword_breakdown ORDER BY downloads DESC, keyword FORMAT TabSeparated",
    "SELECT photo_id FROM analytics.photos ORDER BY cosineDistance(photo_embed, "
    "(SELECT photo_embed FROM analytics.photos WHERE photo_id = 'p0005')) LIMIT 11 FORMAT TabSeparated",
]


# Each mart and parameterized view as a BI tool reads it, timed one request at a time.
READS = {
    "top_k_neighbours": QUERIES[0],
    "conversions_per_candidate": QUERIES[1],
    "keyword_breakdown": QUERIES[2],
    "photo_neighbours (one photo)": "SELECT neighbour_id, dist FROM analytics.photo_neighbours "
    "WHERE photo_id = 'p0005' ORDER BY rank FORMAT TabSeparated",
    "near_duplicates": "SELECT * FROM analytics.near_duplicates ORDER BY photo_id, duplicate_id FORMAT TabSeparated",
    "photo_attributes (one photo)": "SELECT * FROM analytics.photo_attributes WHERE photo_id = 'p0005' "
    "FORMAT TabSeparated",
    "neighbours(photo_id, k = 10)": "SELECT * FROM analytics.neighbours(photo_id = 'p0005', k = 10) "
    "FORMAT TabSeparated",
    "filtered_neighbours(keyword = 'sunset')": "SELECT * FROM analytics.filtered_neighbours(photo_id = 'p0005', "
    "k = 10, keyword = 'sunset', colour = '', country = '', photographer = '', date_from = '', date_to = '', "
    "min_downloads = 0) FORMAT TabSeparated",
}


def read_latencies(url: str, repeats: int) -> dict[str, dict[str, float]]:
    session = requests.Session()
    out = {}
    for name, sql in READS.items():
        times = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            reply = session.post(url, data=sql.encode(), timeout=60)
            times.append(time.perf_counter() - started)
            reply.raise_for_status()
        times = sorted(times[1:])  # the first request warms the caches
        out[name] = {
            "p50_ms": round(1000 * statistics.median(times), 2),
            "p99_ms": round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 2),
            "rows": reply.text.count("\n"),
        }
    return out


def load_run(url: str, clients: int, seconds: float, expected: list[bytes]) -> dict[str, float]:
    outcome = hammer(url, [(q, {}, answer) for q, answer in zip(QUERIES, expected, strict=True)], clients, seconds)
    latencies = outcome.latencies
    return {
        "requests": outcome.requests,
        "errors": len(outcome.errors) + len(outcome.wrong),
        "requests_per_s": round(outcome.requests / seconds, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=25_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--read-repeats", type=int, default=50, help="sequential requests per mart or view")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bildsuche-serve-bench-") as tmp:
        root = Path(tmp)
        data = write_synthetic(root / "dataset", n=args.photos)
        store = built_store(root, data, {"target_photo_id": "p0005", "top_k": 10})
        results = []
        process, port = start_serve(store, "--max-concurrent", str(args.max_concurrent[-1]))
        try:
            reads = read_latencies(f"http://127.0.0.1:{port}", args.read_repeats)
        finally:
            stop(process)
        print(json.dumps(reads), flush=True)
        for limit in args.max_concurrent:
            process, port = start_serve(store, "--max-concurrent", str(limit))
            url = f"http://127.0.0.1:{port}"
            try:
                expected = [requests.post(url, data=q.encode(), timeout=60).content for q in QUERIES]
                outcome = load_run(url, args.clients, args.seconds, expected)
                outcome.update({"max_concurrent": limit, "server_peak_rss_mib": round(peak_rss_mib(process.pid), 1)})
                results.append(outcome)
                print(json.dumps(outcome), flush=True)
            finally:
                stop(process)
    print(
        f"\nphotos={args.photos}, one client, {args.read_repeats} requests each, --max-concurrent "
        f"{args.max_concurrent[-1]}"
    )
    print("| mart or view | p50 ms | p99 ms | rows |\n| --- | --- | --- | --- |")
    for name, r in reads.items():
        print(f"| {name} | {r['p50_ms']} | {r['p99_ms']} | {r['rows']} |")
    print(f"\nphotos={args.photos} clients={args.clients} seconds={args.seconds} cores={os.cpu_count()}")
    print("| --max-concurrent | requests/s | p50 ms | p99 ms | errors | server peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['max_concurrent']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} "
            f"| {r['server_peak_rss_mib']} |"
        )


if __name__ == "__main__":
    main()
