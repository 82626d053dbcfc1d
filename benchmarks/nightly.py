"""A growing collection, night by night: what each nightly run costs, and what many nights do to search.

Generates a base set (CLIP-shaped vectors and Unsplash Lite metadata as benchmarks/synth.py draws
them, conversions by Zipf laws) and then the changed sets a nightly source gives. Every step runs
the nightly sequence in subprocesses, as cron would: `python -m seeds_loader DATA` then `dbt build`
(wall times, peak RSS, dbt's node times):

    full build        the base set into an empty store
    nothing changed   the same files again
    +1 % new          1 % new photos (and their conversions)
    0.1 % removed     0.1 % of the photos gone, with their conversions
    0.1 % re-embedded 0.1 % of the photos with new vectors
    N x +0.3 %        --increments nights of 0.3 % new photos each

Then a store built once from the last night's files (the "fresh" store: its load and `dbt build`
are the full build of the final data) and the store built night by night are queried alike: the
`neighbours` view for --queries photos at --ef-search, re-scored, rounds alternating between the
two stores (one process per store and round: chDB opens one store per process); top-K p50 and
recall@10 against exact search.

    python benchmarks/nightly.py --photos 100000 --conversions 1000000 --increments 30 --keep /tmp/nightly-100k
    python benchmarks/nightly.py --photos 2000 --conversions 20000 --increments 3 --queries 20   # quick
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import BIN, machine, median, percentile, timed
from synth import URL_PREFIX, ClipLike, photo_ids, vectors_array

MODEL = "synthetic-clip"
K = 10


@dataclass
class Collection:
    """The photos and conversions of one night, kept in memory and written whole."""

    capacity: int
    rows: list[int]  # indexes into the id space of the photos present, in source order
    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # re-embedded rows
    conversions: pa.Table | None = None
    next_row: int = 0

    def __post_init__(self) -> None:
        self.ids = photo_ids(self.capacity)
        self.clip = ClipLike(self.capacity)
        self.other = ClipLike(self.capacity, seed=2)  # where re-embedded vectors come from
        self.next_row = max(self.rows) + 1

    def matrix(self) -> np.ndarray:
        x = np.empty((len(self.rows), self.clip.dim), np.float32)
        order = np.array(self.rows)
        for start in range(0, self.capacity, 50_000):
            stop = min(self.capacity, start + 50_000)
            inside = np.flatnonzero((order >= start) & (order < stop))
            if len(inside):
                x[inside] = self.clip.chunk(start, stop)[order[inside] - start]
        for i, row in enumerate(self.rows):
            if row in self.vectors:
                x[i] = self.vectors[row]
        return x

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        rows = np.array(self.rows)
        ids = self.ids.take(pa.array(rows))
        countries = np.array(["Germany", "France", "Iceland", "Japan", "Chile", "Kenya"])
        photos = pa.table(
            {
                "id": pa.array(rows.astype(np.int64)),
                "photo_id": ids,
                "photo_image_url": pa.array([URL_PREFIX + pid for pid in ids.to_pylist()]),
                "photo_embed": vectors_array(self.matrix()),
                "photographer_username": pa.array([f"user{r % 5000}" for r in rows]),
                "photo_location_country": pa.array(countries[rows % len(countries)]),
                "stats_downloads": pa.array((rows % 97).astype(str)),
            }
        ).replace_schema_metadata({b"bildsuche.model": MODEL.encode()})
        pq.write_table(photos, directory / "photos.parquet", compression="zstd")
        assert self.conversions is not None
        pq.write_table(self.conversions, directory / "conversions.parquet", compression="zstd")

    def add_conversions(self, count: int, seed: int) -> None:
        rng = np.random.default_rng((9, seed))
        present = self.ids.take(pa.array(np.array(self.rows)))
        keywords = pa.array([f"keyword {i}" for i in range(2000)])
        start = 0 if self.conversions is None else int(self.conversions.num_rows) + seed * 10_000_000
        new = pa.table(
            {
                "id": pa.array(np.arange(start, start + count, dtype=np.int64)),
                "photo_id": present.take(pa.array((rng.zipf(1.2, count) - 1) % len(self.rows))),
                "keyword": keywords.take(pa.array((rng.zipf(1.3, count) - 1) % len(keywords))),
            }
        )
        self.conversions = new if self.conversions is None else pa.concat_tables([self.conversions, new])

    def add(self, count: int) -> None:
        self.rows += list(range(self.next_row, self.next_row + count))
        self.next_row += count

    def remove(self, count: int, seed: int) -> None:
        rng = np.random.default_rng((3, seed))
        gone = set(rng.choice(self.rows, size=count, replace=False).tolist())
        self.rows = [r for r in self.rows if r not in gone]
        assert self.conversions is not None
        present = self.ids.take(pa.array(np.array(sorted(gone))))
        self.conversions = self.conversions.filter(pc.invert(pc.is_in(self.conversions.column("photo_id"), present)))

    def re_embed(self, count: int, seed: int) -> None:
        rng = np.random.default_rng((4, seed))
        for row in rng.choice(self.rows, size=count, replace=False).tolist():
            self.vectors[row] = self.other.chunk(row, row + 1)[0]


def night(store: Path, data: Path, work: Path, dbt_args: list[str]) -> dict:
    env = {"BILDSUCHE_DB_PATH": str(store), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    load = timed([sys.executable, "-m", "seeds_loader", str(data)], env=env)
    target = work / "target"
    build = timed(
        [str(BIN / "dbt"), "build", "--target-path", str(target), "--log-path", str(work / "logs"), *dbt_args], env=env
    )
    nodes = json.loads((target / "run_results.json").read_text())["results"]
    times = {n["unique_id"].split(".", 2)[-1]: n["execution_time"] for n in nodes}
    # No peak RSS here: the children start from this process, which holds the whole collection,
    # and wait4 reports that size for them (1M photos: 5.2 GB for every child alike).
    return {
        "load_s": round(load.seconds, 2),
        "dbt_s": round(build.seconds, 2),
        "photos_node_s": round(times.get("photos", 0.0), 2),
        "load_output": [line for line in load.output.splitlines() if line.startswith(("raw.photos:", "raw.conv"))],
    }


def layout(store: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--layout", str(store)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_layout(store: Path) -> None:
    from dbt.adapters.chdb.engine import connect

    with connect(store) as client:
        rows = client.query(
            "SELECT partition_id, countIf(rows > 0), sum(rows) FROM system.parts WHERE database = 'analytics' "
            "AND table = 'photos' AND active GROUP BY partition_id ORDER BY partition_id"
        ).result_rows
    data = [(p, n, r) for p, n, r in rows if not p.startswith("patch-")]
    patches = sum(r for p, _, r in rows if p.startswith("patch-"))
    print(json.dumps({"parts": sum(n for _, n, _ in data), "generations": len(data), "patch_rows": patches}))


def query_store(store: Path, spec: Path) -> None:
    """One round of searches on one store (a process of its own)."""
    import time

    from dbt.adapters.chdb.engine import connect

    job = json.loads(spec.read_text())
    settings = {"vector_search_with_rescoring": 1, "hnsw_candidate_list_size_for_search": job["ef_search"]}
    sql = "SELECT photo_id FROM analytics.neighbours(photo_id = {p:String}, k = 10)"
    latencies, hits = [], 0
    with connect(store) as client:
        for pid in job["queries"][:3]:
            client.query(sql, parameters={"p": pid}, settings=settings)  # the graphs read into memory
        for pid, truth in zip(job["queries"], job["truth"], strict=True):
            started = time.perf_counter()
            found = [r[0] for r in client.query(sql, parameters={"p": pid}, settings=settings).result_rows]
            latencies.append((time.perf_counter() - started) * 1000)
            hits += len(set(found) & set(truth))
    print(json.dumps({"p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99),
                      "recall": hits / (K * len(job["queries"]))}))  # fmt: skip


def search_rounds(stores: dict[str, Path], spec: Path, rounds: int) -> dict[str, dict]:
    results: dict[str, list[dict]] = {name: [] for name in stores}
    for _ in range(rounds):
        for name, store in stores.items():
            out = subprocess.run(
                [sys.executable, __file__, "--query", str(store), "--spec", str(spec)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            results[name].append(json.loads(out.strip().splitlines()[-1]))
    return {
        name: {
            "p50_ms": round(median([r["p50_ms"] for r in runs]), 2),
            "p50_ms_rounds": [round(r["p50_ms"], 2) for r in runs],
            "p99_ms": round(median([r["p99_ms"] for r in runs]), 2),
            "recall_at_10": round(runs[0]["recall"], 4),
        }
        for name, runs in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--increments", type=int, default=30, help="nights of +0.3 %% new photos")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="search rounds per store, alternated")
    parser.add_argument("--ef-search", type=int, default=256)
    parser.add_argument("--with-neighbours", action="store_true", help="keep photo_neighbours+ in the builds")
    parser.add_argument("--vars", default="", help="dbt vars for every build (a policy to compare)")
    parser.add_argument(
        "--no-search", action="store_true", help="skip the fresh store and the searches: the nights' costs only"
    )
    parser.add_argument("--keep", type=Path, help="work here and leave stores and data in place")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--query", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--layout", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query:
        query_store(args.query, args.spec)
        return
    if args.layout:
        print_layout(args.layout)
        return

    print(f"machine: {machine()}", flush=True)
    dbt_args = [] if args.with_neighbours else ["--exclude", "photo_neighbours+"]
    if args.vars:
        dbt_args += ["--vars", args.vars]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bildsuche-nightly-"))
    work.mkdir(parents=True, exist_ok=True)
    data, store, fresh = work / "data", work / "store", work / "fresh"
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(fresh, ignore_errors=True)
    n = args.photos
    step = max(1, n * 3 // 1000)
    capacity = n + n // 100 + args.increments * step + 10
    collection = Collection(capacity, list(range(n)))
    collection.add_conversions(args.conversions, 0)
    results = []

    def run(label: str, count: int) -> None:
        collection.write(data)
        row = {"step": label, "changed_photos": count, **night(store, data, work, dbt_args), **layout(store)}
        results.append(row)
        print(json.dumps(row), flush=True)

    try:
        run("full build", n)
        run("nothing changed", 0)
        collection.add(n // 100)
        collection.add_conversions(args.conversions // 100, 1)
        run("+1 % new photos", n // 100)
        collection.remove(n // 1000, 2)
        run("0.1 % removed", n // 1000)
        collection.re_embed(n // 1000, 3)
        run("0.1 % re-embedded", n // 1000)
        for i in range(args.increments):
            collection.add(step)
            collection.add_conversions(args.conversions * 3 // 1000, 10 + i)
            run(f"+0.3 % night {i + 1}", step)
        if args.no_search:
            finish(args, results, None, dbt_args)
            return
        fresh_row = {"step": "fresh build of the last night", **night(fresh, data, work, dbt_args), **layout(fresh)}
        results.append(fresh_row)
        print(json.dumps(fresh_row), flush=True)

        x = collection.matrix()
        ids = collection.ids.take(pa.array(np.array(collection.rows))).to_pylist()
        rng = np.random.default_rng(17)
        queries = rng.choice(len(ids), size=min(args.queries, len(ids)), replace=False)
        truth = []
        for q in queries:
            sims = x @ x[q]
            sims[q] = -np.inf
            truth.append([ids[i] for i in np.argpartition(-sims, K)[:K]])
        spec = work / "queries.json"
        spec.write_text(json.dumps({"queries": [ids[q] for q in queries], "truth": truth, "ef_search": args.ef_search}))
        search = search_rounds({"night by night": store, "fresh": fresh}, spec, args.rounds)
        print(json.dumps(search), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    finish(args, results, search, dbt_args)


def finish(args: argparse.Namespace, results: list[dict], search: dict | None, dbt_args: list[str]) -> None:
    n = args.photos
    summary = {"photos": n, "conversions": args.conversions, "dbt_args": dbt_args, "steps": results, "search": search}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    full = results[0]["load_s"] + results[0]["dbt_s"]
    print(f"\n{n:,} photos, {args.conversions:,} conversions; `dbt build {' '.join(dbt_args)}`")
    print("| step | load s | dbt build s | of which photos s | night / full build | parts (generations) |")
    print("| --- | --- | --- | --- | --- | --- |")
    nightly = results[5:-1] if search else results[5:]
    shown = results[:5] + nightly[-1:] + (results[-1:] if search else [])
    for row in shown:
        total = row["load_s"] + row["dbt_s"]
        print(
            f"| {row['step']} | {row['load_s']:.1f} | {row['dbt_s']:.1f} | {row['photos_node_s']:.1f} | "
            f"{total / full:.1%} | {row['parts']} ({row['generations']}) |"
        )
    nights = [r["load_s"] + r["dbt_s"] for r in nightly]
    if nights:
        print(f"\n+0.3 % nights: median {median(nights):.1f} s, max {max(nights):.1f} s (load and dbt build)")
    if search is None:
        return
    print("\n| store | top-K p50 ms | p99 ms | recall@10 |\n| --- | --- | --- | --- |")
    for name, row in search.items():
        print(f"| {name} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['recall_at_10']:.4f} |")
    ratio = search["night by night"]["p50_ms"] / search["fresh"]["p50_ms"]
    drop = search["fresh"]["recall_at_10"] - search["night by night"]["recall_at_10"]
    print(f"\np50 night by night / fresh: {ratio:.2f}x; recall fresh - night by night: {drop:+.4f}")


if __name__ == "__main__":
    main()
