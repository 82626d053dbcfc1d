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
import os
import random
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from measure import machine, vector_literal

from bildsuche.serve.engine import Request, StoreEngine
from serve_helpers import start_serve, stop

HELPERS = Path(__file__).resolve().parents[1] / "tests" / "python"


EF_SEARCH = 256  # var hnsw_ef_search of dbt_project.yml, serve's default


def build_in_child(root: Path, photos: int) -> Path:
    """The store, built by a child process: chDB hosts one store per process, and this one opens the copy."""
    code = (
        "import sys, numpy as np; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
        "from datasets_helpers import built_store, write_synthetic;"
        "root = Path(sys.argv[1]); data = write_synthetic(root / 'dataset', n=int(sys.argv[3]));"
        "np.save(root / 'probe.npy', data.embeddings[:200]);"
        "built_store(root, data, {'target_photo_id': 'p0005', 'top_k': 10})"
    )
    subprocess.run([sys.executable, "-c", code, str(root), str(HELPERS), str(photos)], check=True)
    return root / "store"


def workloads(vectors: list[list[float]], requests: int) -> dict[str, list[str]]:
    """The statements of each workload, one per request; a new vector in every top-K request, as a script sends."""

    def top10(i: int) -> str:
        literal = vector_literal(vectors[i % len(vectors)])
        return (
            f"SELECT photo_id, cosineDistance(photo_embed, {literal}) AS dist FROM analytics.photos "
            "ORDER BY dist LIMIT 10"
        )

    return {
        "select 1": ["SELECT 1"] * requests,
        "top-10, a new 512-float literal each": [top10(i) for i in range(requests)],
        "length(a new 512-float literal each)": [
            f"SELECT length({vector_literal(vectors[i % len(vectors)])})" for i in range(requests)
        ],
        "select 1 as c<i>: a statement never seen": [f"SELECT 1 AS c{i}" for i in range(requests)],
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


def side_by_side(statements: list[str], ways: list[Callable[[str], bytes]]) -> list[float]:
    """Median ms of each statement each way, the ways taking turns statement by statement, in an order
    drawn anew for each (the way that runs right after another finds the CPU caches warm)."""
    answers = {way(statements[0]) for way in ways}
    if len(answers) != 1:
        raise RuntimeError(f"different answers for {statements[0][:60]}")
    times: list[list[float]] = [[] for _ in ways]
    order = list(range(len(ways)))
    draw = random.Random(7)
    for sql in statements:
        draw.shuffle(order)
        for i in order:
            started = time.perf_counter()
            ways[i](sql)
            times[i].append(time.perf_counter() - started)
    return [1000 * statistics.median(spent) for spent in times]


LOG_MS = re.compile(r" ms=(?P<ms>[\d.]+) code=0 sql=(?P<sql>.*)$")


def server_side_ms(log: Path) -> dict[str, float]:
    """p50 of the time serve itself spent on each workload's requests (its --log lines), by workload."""
    prefixes = {
        "select 1": '"SELECT 1"',
        "top-10, a new 512-float literal each": '"SELECT photo_id, cosineDistance',
        "length(a new 512-float literal each)": '"SELECT length(',
        "select 1 as c<i>: a statement never seen": '"SELECT 1 AS c',
    }
    spent: dict[str, list[float]] = {name: [] for name in prefixes}
    for line in log.read_text().splitlines():
        found = LOG_MS.search(line)
        for name, prefix in prefixes.items():
            if found and found["sql"].startswith(prefix) and (name != "select 1" or found["sql"] == prefix):
                spent[name].append(float(found["ms"]))
    return {name: statistics.median(values) for name, values in spent.items() if values}


def ping_ms(client: HttpClient, requests: int) -> float:
    """An HTTP round trip that runs no query: the floor of the HTTP layer and the client."""
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.connection.request("GET", "/ping")
        client.connection.getresponse().read()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300, help="requests per workload and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--serve-code", type=Path, help="run serve from this checkout (an earlier commit: the figures before a change)"
    )
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
        # serve's own code on the copy, in this process: the difference to the engine alone is what its
        # checks cost, the difference to the served figure what HTTP costs.
        layer = StoreEngine(copy)
        log = root / "serve.log"
        if args.serve_code:  # an earlier serve may know no --log; `python -m` imports from its folder first
            here = Path.cwd()
            os.environ["PYTHONPATH"] = str(args.serve_code.resolve())
            os.chdir(args.serve_code)
            try:
                process, port = start_serve(store, *args.serve_args)
            finally:
                os.chdir(here)
                del os.environ["PYTHONPATH"]
            log.write_text("")
        else:
            process, port = start_serve(store, "--log", str(log), *args.serve_args)
        try:
            client = HttpClient(port)
            vectors = np.load(root / "probe.npy").tolist()

            def local(text: str) -> bytes:
                return bytes(engine.query(text, "TSV").bytes())  # one connection, as a script holds it

            def checked(text: str) -> bytes:
                return layer.execute(Request(text)).body

            rounds: dict[str, list[list[float]]] = {}
            pings = []
            for round_ in range(args.rounds):
                # Each round's statements are new to the server: its verdict cache starts cold for them.
                for name, statements in workloads(vectors, args.requests).items():
                    if name.startswith("select 1 as"):
                        statements = [f"{sql}_{round_}" for sql in statements]
                    rounds.setdefault(name, []).append(side_by_side(statements, [local, checked, client]))
                pings.append(ping_ms(client, args.requests))
        finally:
            stop(process)
            layer.close()
            engine.close()
        inside = server_side_ms(log)
    results = {}
    for name, runs in rounds.items():
        local_ms, layer_ms, served_ms = (statistics.median(run[i] for run in runs) for i in range(3))
        results[name] = {"in_process_ms": round(local_ms, 3), "serve_code_in_process_ms": round(layer_ms, 3),
                         "served_ms": round(served_ms, 3), "overhead_ms": round(served_ms - local_ms, 3),
                         "inside_serve_ms": round(inside.get(name, float("nan")), 3),
                         "overhead_per_round_ms": [round(run[2] - run[0], 3) for run in runs]}  # fmt: skip
    print(json.dumps({"workloads": results, "ping_ms": round(statistics.median(pings), 3)}), flush=True)
    print(f"\nphotos={args.photos}, {args.requests} requests per workload and round, {args.rounds} rounds (medians)")
    print("| workload | in-process | serve's code in-process | inside serve (its log) | through serve | overhead |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['in_process_ms']} | {r['serve_code_in_process_ms']} | {r['inside_serve_ms']} "
              f"| {r['served_ms']} | {r['overhead_ms']} |")  # fmt: skip
    print("(p50 ms; overhead: through serve minus in-process)")
    print(f"\nGET /ping round trip (HTTP, no query): {statistics.median(pings):.3f} ms")


if __name__ == "__main__":
    main()
