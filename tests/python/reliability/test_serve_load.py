"""`bildsuche serve` under a bounded loopback load: no server error, every answer right, memory bounded.

Clients (one keep-alive session each) send a mix of mart reads and neighbour
queries of the parameterized view for many photos; every answer is compared
with the one the server gave before the load.  The server's peak resident memory must stay under RSS_BOUND_MIB,
stated from measurements with a margin (docs/reliability.md).

    quick: 10 clients for 5 s        full (--full): 50 clients for 60 s
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from reliability.stores import PayloadStore
from serve_helpers import hammer, peak_rss_mib, server_stderr, start_serve, stop

pytestmark = pytest.mark.slow

# Measured peaks of the server on the battery's store: see docs/reliability.md; the bound leaves room.
RSS_BOUND_MIB = 1024
MART_READS = [
    "SELECT rank, photo_id, dist FROM analytics.top_k_neighbours ORDER BY rank",
    "SELECT photo_id, downloads FROM analytics.conversions_per_candidate ORDER BY downloads DESC, rank",
    "SELECT keyword, downloads FROM analytics.keyword_breakdown ORDER BY downloads DESC, keyword",
    "SELECT count(), sum(length(photo_embed)) FROM analytics.photos",
    "SELECT photo_id, count() FROM raw.conversions GROUP BY photo_id ORDER BY count() DESC, photo_id LIMIT 20",
]
NEIGHBOURS = (
    "SELECT photo_id FROM analytics.neighbours(photo_id = {pid:String}, k = {k:UInt32}) ORDER BY rank "
    "FORMAT JSONEachRow"
)


@dataclass
class Served:
    url: str
    pid: int
    queries: list[tuple[str, dict[str, str], bytes]]


@pytest.fixture(scope="module")
def served(payload_store: PayloadStore) -> Iterator[Served]:
    process, port = start_serve(payload_store.store)
    url = f"http://127.0.0.1:{port}"
    try:
        queries = []
        for sql in MART_READS:
            queries.append((sql, {}, requests.post(url, data=sql.encode(), timeout=60).content))
        for i, pid in enumerate(payload_store.data.photo_ids[:60]):
            params = {"param_pid": pid, "param_k": str(3 + i % 8)}
            answer = requests.post(url, params=params, data=NEIGHBOURS.encode(), timeout=60)
            assert answer.status_code == 200, answer.text
            got = [json.loads(line)["photo_id"] for line in answer.text.split("\n") if line]
            assert len(got) == 3 + i % 8 and pid not in got, pid  # (exactness: test_marts, test_serve_hostile)
            queries.append((NEIGHBOURS, params, answer.content))
        yield Served(url, process.pid, queries)
    finally:
        stop(process)
    assert "Traceback" not in server_stderr(process), server_stderr(process)


def _load(served: Served, clients: int, seconds: float) -> None:
    outcome = hammer(served.url, served.queries, clients, seconds)
    peak = peak_rss_mib(served.pid)
    summary = {
        "clients": clients,
        "seconds": seconds,
        "requests": outcome.requests,
        "p99_ms": round(1000 * outcome.latencies[int(0.99 * (len(outcome.latencies) - 1))], 1),
        "peak_rss_mib": round(peak, 1),
    }
    print(json.dumps(summary))  # the figures docs/reliability.md states, with -s
    assert outcome.requests > clients
    assert not outcome.errors, outcome.errors[:5]
    assert not outcome.wrong, outcome.wrong[:5]
    assert peak < RSS_BOUND_MIB, summary


def test_ten_clients_for_five_seconds(served: Served) -> None:
    _load(served, clients=10, seconds=5)


@pytest.mark.full
def test_fifty_clients_for_a_minute(served: Served) -> None:
    _load(served, clients=50, seconds=60)
