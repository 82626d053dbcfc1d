"""What a request through `bildsuche serve` costs over the same query in-process.

Builds one store of CLIP-shaped vectors (synthetic, 512-d) with `dbt build`,
copies it, serves one copy and opens the other in this process, then sends
each query alternately to both, one at a time: in-process through the chDB
connection a Python script would use, and over HTTP (a keep-alive
`http.client` connection: the least a client can add).  The figure is the
difference of the medians, in ms; rounds are repeated and their medians kept.

    python benchmarks/serve_overhead.py --photos 2000 --requests 300 --rounds 3

docs/benchmarks.md ("Serve overhead") says where the time goes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import chdb
import numpy as np

HELPERS = Path(__file__).resolve().parents[1] / "tests" / "python"
sys.path.insert(0, str(HELPERS))
from measure import machine, vector_literal
from serve_helpers import start_serve, stop


EF_SEARCH = 256  # var hnsw_ef_search of dbt_project.yml, serve's default


def build_in_child(root: Path, photos: int) -> Path:
    """The store, built by a child process: chDB hosts one store per process, and this one opens the copy."""
    code = (
        "import sys, numpy as np; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
        "from datasets_helpers import built_store, write_synthetic;"
        "root = Path(sys.argv[1]); data = write_synthetic(root / 'dataset', n=int(sys.argv[3]));"
        "np.save(root / 'probe.npy', data.embeddings[3]);"
        "built_store(root, data, {'target_photo_id': 'p0005', 'top_k': 10})"
    )
    subprocess.run([sys.executable, "-c", code, str(root), str(HELPERS), str(photos)], check=True)
    return root / "store"


def queries(data_vector: list[float]) -> dict[str, str]:
    literal = vector_literal(data_vector)
    return {
        "select 1": "SELECT 1",
        "top-10, 512-float literal": "SELECT photo_id, cosineDistance(photo_embed, "
        f"{literal}) AS dist FROM analytics.photos ORDER BY dist LIMIT 10",
        "length(512-float literal)": f"SELECT length({literal})",
    }


class HttpClient:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def __call__(self, sql: str) -> bytes:
        self.connection.request("POST", "/", body=sql.encode(), headers={"Content-Type": "text/plain"})
        reply = self.connection.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{reply.status}: {body[:300]!r}")
        return body


def side_by_side(
    sql: str, in_process: Callable[[str], bytes], served: Callable[[str], bytes], requests: int
) -> tuple[float, float]:
    """Median ms of ``sql`` in-process and served, the two alternating."""
    if in_process(sql) != served(sql):
        raise RuntimeError(f"different answers for {sql[:60]}")
    local, remote = [], []
    for _ in range(requests):
        started = time.perf_counter()
        in_process(sql)
        local.append(time.perf_counter() - started)
        started = time.perf_counter()
        served(sql)
        remote.append(time.perf_counter() - started)
    return 1000 * statistics.median(local), 1000 * statistics.median(remote)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300, help="requests per query and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-args", nargs=argparse.REMAINDER, default=[], help="extra `bildsuche serve` options")
    args = parser.parse_args()
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bildsuche-overhead-") as tmp:
        root = Path(tmp)
        store = build_in_child(root, args.photos)
        copy = root / "copy"
        shutil.copytree(store, copy, symlinks=True)  # metadata/<db> are links into store/
        engine = chdb.connect(str(copy))
        # The settings serve applies to every query unless a client sets them: the same answers.
        engine.query(f"SET vector_search_with_rescoring = 1, hnsw_candidate_list_size_for_search = {EF_SEARCH}")
        process, port = start_serve(store, *args.serve_args)
        try:
            client = HttpClient(port)
            probe = np.load(root / "probe.npy").tolist()
            rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in queries(probe)}
            for _ in range(args.rounds):
                for name, sql in queries(probe).items():
                    handle = engine  # one connection, as a script holds it

                    def local(text: str, handle: chdb.state.sqlitelike.Connection = handle) -> bytes:
                        return bytes(handle.query(text, "TSV").bytes())

                    rounds[name].append(side_by_side(sql, local, client, args.requests))
        finally:
            stop(process)
            engine.close()
    results = {}
    for name, pairs in rounds.items():
        local = statistics.median(p[0] for p in pairs)
        served = statistics.median(p[1] for p in pairs)
        results[name] = {"in_process_ms": round(local, 3), "served_ms": round(served, 3),
                         "overhead_ms": round(served - local, 3),
                         "overhead_per_round_ms": [round(p[1] - p[0], 3) for p in pairs]}  # fmt: skip
    print(json.dumps(results), flush=True)
    print(f"\nphotos={args.photos}, {args.requests} requests per query and round, {args.rounds} rounds (medians)")
    print("| query | in-process p50 ms | through serve p50 ms | overhead ms |\n| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['in_process_ms']} | {r['served_ms']} | {r['overhead_ms']} |")


if __name__ == "__main__":
    main()
