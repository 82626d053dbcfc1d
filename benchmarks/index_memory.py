"""Memory per vector of the photos' HNSW index, for each quantization.

Builds the index as the `photos` post-hook does (hnsw_params.build_index) over
n CLIP-shaped vectors in one part, then reads what it costs: the index file on
disk (system.data_skipping_indices), the engine's vector index cache once one
query has loaded the graph (system.metrics), and the growth of this process's
resident memory across that first query.  From the bytes per vector it
extrapolates (and says so) the largest collection one machine of --ram-gib
holds with the index in memory, the float32 vectors of the table on disk.

    python benchmarks/index_memory.py --n 100000 --quantizations bf16 f32 i8
    python benchmarks/index_memory.py --store /tmp/bildsuche-1m   # a store dbt_build.py --keep left

With --store it measures the `photos` index of a store built by `dbt build`
(every part's graph: the first query loads them all) instead of building one.
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
from measure import machine, vector_literal
from synth import ClipLike

# Left to the rest of a machine (the OS, the engine's other caches, the dbt process) out of its RAM.
RESERVED_GIB = 4.0
# The engine's default vector_similarity_index_cache_size (a server setting): graphs beyond it are evicted.
DEFAULT_CACHE_GIB = 5.0


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cache_bytes(client) -> int:  # type: ignore[no-untyped-def]
    rows = client.query("select value from system.metrics where metric = 'VectorSimilarityIndexCacheBytes'").result_rows
    return int(rows[0][0]) if rows else 0


def loaded_by_one_query(client, table: str, vector: np.ndarray) -> tuple[int, dict[str, float]]:  # type: ignore[no-untyped-def]
    """The rows of `table`, and per row its index file bytes, then cache and RSS growth across the
    first query over `table` (it loads the graphs)."""
    database, name = table.split(".")
    on_disk, n = client.query(
        "select (select sum(data_compressed_bytes) from system.data_skipping_indices"
        f" where database = '{database}' and table = '{name}'), (select count() from {table})"
    ).result_rows[0]
    before_rss, before_cache = rss_bytes(), cache_bytes(client)
    client.query(f"select * from {table} order by cosineDistance(photo_embed, {vector_literal(vector)}) limit 10")
    loaded_cache, loaded_rss = cache_bytes(client) - before_cache, rss_bytes() - before_rss
    return int(n), {
        "index_file_bytes_per_vector": round(int(on_disk) / n, 1),
        "cache_bytes_per_vector": round(loaded_cache / n, 1),
        "rss_growth_bytes_per_vector": round(loaded_rss / n, 1),
    }


def measure(x: np.ndarray, quantization: str, m: int, ef: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bildsuche-mem-"))
    try:
        client = connect(workdir / "store")
        client.command("create database bench")
        load_table(client, x, 256)
        build_s = build_index(client, f"{quantization},{m},{ef}", x.shape[1])
        _, per_vector = loaded_by_one_query(client, "bench.photos", x[0])
        client.close()
        return {"build_s": round(build_s, 1), **per_vector}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--quantizations", nargs="+", default=["bf16", "f32", "i8"])
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--ram-gib", type=float, default=24.0)
    parser.add_argument("--store", type=Path, help="measure this dbt-built store's index instead (dbt_build.py --keep)")
    args = parser.parse_args()
    print(machine(), flush=True)
    rows: dict[str, dict[str, float]] = {}
    if args.store:
        with connect(args.store / "store") as client:
            (index_type,) = client.query(
                "select type_full from system.data_skipping_indices where database = 'analytics' and table = 'photos'"
            ).result_rows[0]
            # vector_similarity('hnsw', distance, dimension, quantization, M, ef_construction)
            _, _, _, quantization, m, ef = (part.strip(" ')") for part in index_type.split(","))
            args.m, args.ef_construction = int(m), int(ef)
            first = np.asarray(client.query("select photo_embed from analytics.photos limit 1").result_rows[0][0])
            args.n, per_vector = loaded_by_one_query(client, "analytics.photos", first)
        rows[quantization] = {"build_s": float("nan"), **per_vector}
        print(json.dumps({"store": str(args.store), "quantization": quantization, **per_vector}), flush=True)
    else:
        x = ClipLike(args.n).all()
        for quantization in args.quantizations:
            rows[quantization] = measure(x, quantization, args.m, args.ef_construction)
            print(json.dumps({"quantization": quantization, **rows[quantization]}), flush=True)
    usable = (args.ram_gib - RESERVED_GIB) * 2**30
    print(f"\n{args.n:,} vectors (measured), M {args.m}, ef_construction {args.ef_construction};"
          f" the last column extrapolated to {args.ram_gib:g} GiB less {RESERVED_GIB:g} GiB reserved")  # fmt: skip
    print("| quantization | index build s | index file B/vector | index in memory B/vector | RSS growth B/vector"
          " | vectors in memory (extrapolated) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for quantization, r in rows.items():
        per = max(r["cache_bytes_per_vector"], r["rss_growth_bytes_per_vector"], r["index_file_bytes_per_vector"])
        build = "-" if r["build_s"] != r["build_s"] else r["build_s"]  # NaN: a store measured, not built
        print(f"| {quantization} | {build} | {r['index_file_bytes_per_vector']} | {r['cache_bytes_per_vector']}"
              f" | {r['rss_growth_bytes_per_vector']} | {usable / per / 1e6:.1f} M |")  # fmt: skip
    print(f"The engine keeps at most vector_similarity_index_cache_size (default {DEFAULT_CACHE_GIB:g} GiB)"
          " of graphs in memory: beyond that, raise it in the server's configuration.")  # fmt: skip


if __name__ == "__main__":
    main()
