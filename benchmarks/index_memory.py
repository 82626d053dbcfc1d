"""Memory per vector of the photos' HNSW index, for each quantization.

Builds the index as the `photos` post-hook does (hnsw_params.build_index) over
n CLIP-shaped vectors in one part, then reads what it costs: the index file on
disk (system.data_skipping_indices), the engine's vector index cache once one
query has loaded the graph (system.metrics), and the growth of this process's
resident memory across that first query.  From the bytes per vector it
extrapolates (and says so) the largest collection one machine of --ram-gib
holds with the index in memory, the float32 vectors of the table on disk.

    python benchmarks/index_memory.py --n 100000 --quantizations bf16 f32 i8
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


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cache_bytes(client) -> int:  # type: ignore[no-untyped-def]
    rows = client.query("select value from system.metrics where metric = 'VectorSimilarityIndexCacheBytes'").result_rows
    return int(rows[0][0]) if rows else 0


def measure(x: np.ndarray, quantization: str, m: int, ef: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bildsuche-mem-"))
    try:
        client = connect(workdir / "store")
        client.command("create database bench")
        load_table(client, x, 256)
        build_s = build_index(client, f"{quantization},{m},{ef}", x.shape[1])
        on_disk = client.query(
            "select sum(data_compressed_bytes), sum(data_uncompressed_bytes) from system.data_skipping_indices"
            " where database = 'bench' and table = 'photos'"
        ).result_rows[0]
        before_rss, before_cache = rss_bytes(), cache_bytes(client)
        client.query(
            f"select id from bench.photos order by cosineDistance(photo_embed, {vector_literal(x[0])}) limit 10"
        )
        loaded_cache, loaded_rss = cache_bytes(client) - before_cache, rss_bytes() - before_rss
        client.close()
        n = len(x)
        return {
            "build_s": round(build_s, 1),
            "index_file_bytes_per_vector": round(int(on_disk[0]) / n, 1),
            "cache_bytes_per_vector": round(loaded_cache / n, 1),
            "rss_growth_bytes_per_vector": round(loaded_rss / n, 1),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--quantizations", nargs="+", default=["bf16", "f32", "i8"])
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--ram-gib", type=float, default=24.0)
    args = parser.parse_args()
    print(machine(), flush=True)
    x = ClipLike(args.n).all()
    rows = {}
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
        print(f"| {quantization} | {r['build_s']} | {r['index_file_bytes_per_vector']} | {r['cache_bytes_per_vector']}"
              f" | {r['rss_growth_bytes_per_vector']} | {usable / per / 1e6:.1f} M |")  # fmt: skip


if __name__ == "__main__":
    main()
