"""Compare the dbt relations of two stores, row for row: an embedded run against a server-target run.

    python tests/python/marts_compare.py --embedded STORE --url http://127.0.0.1:PORT [--user U --password P]

Every table of schema `analytics` and `raw` on one side must be on the other
with the same rows (sorted, so that row order does not count; times left
out), but for the
models only the embedded adapter builds; each parameterized view must give
the same rows for a few photos.  Used by scripts/check and
tests/python/test_server_target.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clickhouse_connect.driver.client import Client

EMBEDDED_ONLY = ("photo_neighbours", "near_duplicates", "keyword_suggestions", "underexposed_lookalikes")
SCHEMAS = ("raw", "analytics")


def relations(client: Client) -> list[str]:
    """``schema.name`` of every relation of SCHEMAS, leftovers of a run included."""
    rows = client.query(
        "SELECT database || '.' || name FROM system.tables WHERE has({schemas:Array(String)}, database) ORDER BY 1",
        parameters={"schemas": list(SCHEMAS)},
    ).result_rows
    return [str(r[0]) for r in rows]


def parameterized_views(client: Client) -> list[str]:
    rows = client.query(
        "SELECT database || '.' || name FROM system.tables "
        "WHERE has({schemas:Array(String)}, database) AND notEmpty(parameterized_view_parameters) ORDER BY 1",
        parameters={"schemas": list(SCHEMAS)},
    ).result_rows
    return [str(r[0]) for r in rows]


def sorted_rows(client: Client, relation: str) -> list[tuple[object, ...]]:
    """The rows of ``relation``, sorted; times left out (when a search was saved differs between runs)."""
    described = client.query(f"DESCRIBE TABLE {relation}").result_rows
    columns = ", ".join(f"`{name}`" for name, kind, *_ in described if "DateTime" not in str(kind))
    sql = f"SELECT {columns} FROM {relation} ORDER BY toString(tuple({columns}))"
    return [tuple(row) for row in client.query(sql).result_rows]


def differences(embedded: Client, served: Client, photo_ids: list[str]) -> list[str]:
    """What differs between the two stores' dbt relations; empty when they agree."""
    found: list[str] = []
    views = parameterized_views(embedded)
    expected = {name for name in relations(embedded) if name.split(".", 1)[1] not in EMBEDDED_ONLY}
    theirs = set(relations(served))
    if theirs != expected:
        found.append(
            f"relations differ: only embedded {sorted(expected - theirs)}, only served {sorted(theirs - expected)}"
        )
    for name in sorted((expected & theirs) - set(views)):
        a, b = sorted_rows(embedded, name), sorted_rows(served, name)
        if a != b:
            first = next((x, y) for x, y in zip(a + [()] * len(b), b + [()] * len(a), strict=False) if x != y)
            found.append(f"{name}: {len(a)} rows embedded, {len(b)} served, first difference {first}")
    for view in views:
        arguments = "k = 5" if view.endswith(".neighbours") else (
            "k = 5, keyword = '', colour = '', country = '', photographer = '', date_from = '', date_to = '', "
            "min_downloads = 0"
        )  # fmt: skip
        for photo_id in photo_ids:
            sql = f"SELECT * FROM {view}(photo_id = {{pid:String}}, {arguments}) ORDER BY rank"
            # Exact distances on both sides (serve's default; the embedded client's must be asked for).
            settings = {"vector_search_with_rescoring": 1}
            a = embedded.query(sql, parameters={"pid": photo_id}, settings=settings).result_rows
            b = served.query(sql, parameters={"pid": photo_id}, settings=settings).result_rows
            if a != b:
                found.append(f"{view}({photo_id}): {a[:2]} embedded, {b[:2]} served")
    return found


def main() -> int:
    import clickhouse_connect

    from bildsuche.store import client_for

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedded", type=Path, required=True)
    parser.add_argument("--url", required=True, help="http://HOST:PORT of `bildsuche serve` on the other store")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    host, _, port = args.url.removeprefix("http://").rstrip("/").partition(":")
    served = clickhouse_connect.get_client(host=host, port=int(port), username=args.user, password=args.password)
    with client_for("embedded", path=args.embedded) as embedded:
        rows = embedded.query("SELECT photo_id FROM raw.photos ORDER BY photo_id LIMIT 3").result_rows
        photos = [str(r[0]) for r in rows]
        found = differences(embedded, served, photos)
        count = len(relations(embedded))
    for line in found:
        print(line, file=sys.stderr)
    if found:
        return 1
    print(f"the server-target run and the embedded run agree: {count} relations, the parameterized views for {photos}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
