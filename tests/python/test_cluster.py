"""The store on a ClickHouse cluster of 2 shards x 2 replicas (CLICKHOUSE_CLUSTER set), by what is sent.

No cluster runs here: every statement that seeds_loader, python_embed's saved search and
`dbt build --target clickhouse` (dbt-clickhouse's own client) send is recorded and run on one
embedded engine as one replica of one shard would run it (cluster_emulation.py).  Two nights are
loaded and built so, and the same two nights on the same target without a cluster.  The tests
check the recorded DDL (engines, ON CLUSTER, sharding keys, the index), that the models' SQL is the
single server's, that every shard's table is the single server's table, and that the marts agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dbt.adapters.chdb.engine import connect

from bildsuche.dataset import SavedQuery
from bildsuche.dbt import environment, run_dbt
from bildsuche.errors import StoreUnavailableError, UsageError
from bildsuche.store import client_for
from cluster_emulation import CLUSTER, EmulatedCluster, dbt_on
from datasets_helpers import SYNTHETIC_MODEL, SyntheticDataset
from nightly_helpers import first_night, next_night
from seeds_loader import load, save_query

VARS = {"target_photo_id": "p0007", "top_k": 8}
PHOTO_KEY = "cityHash64(photo_id)"
# The tables the recorded DDL must shard by PHOTO_KEY (and keyword_search_relevance by its keyword).
PHOTO_KEYED = {
    "raw.photos",
    "raw.conversions",
    "analytics.photos",
    "analytics.top_k_neighbours",
    "analytics.conversions_per_candidate",
    "analytics.keyword_breakdown",
    "analytics.photo_attributes",
    "analytics.search_results",
}
MARTS = {
    "photos": "SELECT id, photo_id, photo_image_url, photo_embed, embed_model, content_hash FROM analytics.photos",
    "top_k_neighbours": "SELECT * FROM analytics.top_k_neighbours",
    "conversions_per_candidate": "SELECT * FROM analytics.conversions_per_candidate",
    "keyword_breakdown": "SELECT * FROM analytics.keyword_breakdown",
    "photo_attributes": "SELECT * FROM analytics.photo_attributes",
    "search_results": "SELECT * FROM analytics.search_results",
    # re-scored: the emulation's Buffer tables are searched without the index, exactly
    "neighbours": "SELECT * FROM analytics.neighbours(photo_id = 'p0042', k = 6) "
    "SETTINGS vector_search_with_rescoring = 1",
}


@dataclass
class Store:
    path: Path
    cluster: EmulatedCluster | None
    # Statements sent up to the end of each night (cluster stores only).
    night_ends: list[int] = field(default_factory=list)
    # dbt's compiled SQL of every model, per night.
    compiled: list[dict[str, str]] = field(default_factory=list)

    def night(self, index: int) -> list[str]:
        assert self.cluster is not None
        start = self.night_ends[index - 1] if index else 0
        return self.cluster.statements[start : self.night_ends[index]]


def saved_search(data: SyntheticDataset) -> SavedQuery:
    vector = data.embeddings[data.index("p0100")] + data.embeddings[data.index("p0101")]
    return SavedQuery("two photos", "image", "test", SYNTHETIC_MODEL, (vector / np.linalg.norm(vector)).tolist())


def compiled_models(target: Path) -> dict[str, str]:
    models = target / "compiled" / "bildsuche" / "models"
    return {str(p.relative_to(models)): p.read_text() for p in sorted(models.rglob("*.sql"))}


def run_night(store: Store, data: SyntheticDataset, root: Path, night: int) -> None:
    cluster = store.cluster
    with client_for("embedded", path=store.path) as inner:
        if cluster:
            cluster.setup(inner)
        client = cluster.client(inner) if cluster else inner
        load(client, data.directory, cluster=CLUSTER if cluster else "")
        if night == 0:
            save_query(client, saved_search(data), CLUSTER if cluster else "")
    target = root / f"target-{night}"
    with environment({"DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(root / "logs")}), dbt_on(cluster, store.path):
        run_dbt(["build"], db_path=store.path, dbt_vars=VARS, quiet=True)
    if cluster:
        store.night_ends.append(len(cluster.statements))
    store.compiled.append(compiled_models(target))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """Two nights built on one server and on the emulated cluster: (single, sharded)."""
    root = tmp_path_factory.mktemp("cluster")
    nights = [first_night(root / "night-0", n=160)]
    nights.append(
        next_night(nights[0], root / "night-1", remove=["p0003", "p0150"], change=["p0042", "p0101"], add=12, seed=5)
    )
    single = Store(root / "single", None)
    sharded = Store(root / "sharded", EmulatedCluster())
    for night, data in enumerate(nights):
        for store in (single, sharded):
            run_night(store, data, root / store.path.name, night)
    yield single, sharded


def flat(sql: str) -> str:
    """``sql`` without dbt's query comment, on one line."""
    return re.sub(r"\s+", " ", re.sub(r"/\*.*?\*/", "", sql, flags=re.S)).strip()


def distributed_tables(statements: list[str]) -> dict[str, tuple[str, str, str, str]]:
    """name -> (cluster, database, local table, sharding key) of every Distributed table created."""
    found = {}
    for sql in map(flat, statements):
        match = re.match(
            r"create (?:or replace )?table `?(\w+)`?\.`?(\w+)`? on cluster \S+ as \S+ "
            r"engine = Distributed\('([^']*)', '([^']*)', '([^']*)', (.*)\)$",
            sql,
            re.I,
        )
        if match:
            db, name, *args = match.groups()
            found[f"{db}.{name}"] = (args[0], args[1], args[2], args[3].strip())
    return found


def test_photo_keyed_tables_are_sharded_alike_over_their_local_tables(stores: tuple[Store, Store]) -> None:
    sharded = stores[1]
    tables = distributed_tables(sharded.night(0))
    assert set(tables) >= PHOTO_KEYED, f"not Distributed: {PHOTO_KEYED - set(tables)}"
    for name in PHOTO_KEYED:
        cluster, database, local, key = tables[name]
        assert (cluster, database, local) == (CLUSTER, name.split(".")[0], name.split(".")[1] + "_local"), name
        # one key for photos, their raw rows and their conversions: a photo's rows share a shard
        assert key == PHOTO_KEY, f"{name} is sharded by {key}"
    assert tables["analytics.keyword_search_relevance"][3] == "cityHash64(keyword)"


def test_local_tables_are_replicated_in_their_shard_and_small_ones_everywhere(stores: tuple[Store, Store]) -> None:
    cluster = stores[1].cluster
    assert cluster is not None
    creates = [flat(s) for s in cluster.ddl() if re.match(r"\s*create table", flat(s), re.I)]
    per_shard = "ReplicatedMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')"
    locals_ = {}
    for sql in creates:
        # the loader creates raw.<name>__loading_local and swaps it in as raw.<name>_local
        name = re.match(r"create table `?(\w+)`?\.`?(\w+)`?", sql, re.I).group(1, 2)  # type: ignore[union-attr]
        if name[1].endswith("_local"):
            locals_[f"{name[0]}.{name[1].replace('__loading', '')}"] = sql
    assert set(locals_) >= {n + "_local" for n in PHOTO_KEYED}
    for sql in locals_.values():
        assert per_shard in sql, sql[:300]
    everywhere = "ReplicatedMergeTree('/clickhouse/tables/{uuid}/all', '{replica}')"
    for name in ("`analytics`.`saved_searches`", "`analytics`.`text_model_fits`"):
        assert any(s.startswith(f"create table {name}") and everywhere in s for s in creates), name
    search_queries = [s for s in creates if s.startswith("CREATE TABLE `raw`.`search_queries`")]
    assert len(search_queries) == 1
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/all', '{replica}', saved_at)" in search_queries[0]


def test_every_ddl_statement_goes_on_the_cluster(stores: tuple[Store, Store]) -> None:
    cluster = stores[1].cluster
    assert cluster is not None
    missing = []
    for sql in map(flat, cluster.ddl()):
        # dbt-clickhouse's probe of EXCHANGE on the server it talks to, and the tables where tests that
        # store their failures keep them (on that server, for the person reading the failure)
        if "__dbt_exchange_test" in sql or "`analytics_dbt_test__audit`." in sql:
            continue
        if not re.search(rf"\bon cluster [`\"']?{CLUSTER}[`\"']?", sql, re.I):
            missing.append(sql[:200])
    assert not missing, "DDL without ON CLUSTER:\n" + "\n".join(missing)


def test_dbt_talks_to_the_cluster_with_its_settings(stores: tuple[Store, Store]) -> None:
    cluster = stores[1].cluster
    assert cluster is not None
    settings = {k: str(v) for k, v in cluster.session_settings.items()}
    assert settings["distributed_product_mode"] == "global"  # IN/JOIN subqueries over Distributed tables
    assert settings["optimize_skip_unused_shards"] == "1"
    assert settings["optimize_distributed_group_by_sharding_key"] == "1"
    assert settings["insert_distributed_sync"] == "1"  # dbt-clickhouse's, needed by its distributed materializations
    # the searches' own settings reach the shards with the insert that runs them
    inserts = [flat(s) for s in cluster.statements if flat(s).startswith("insert into `analytics`.`top_k_neighbours`")]
    assert inserts
    for sql in inserts:
        assert re.search(r"vector_search_with_rescoring\s*=\s*'?1", sql), sql[-300:]
        assert re.search(r"hnsw_candidate_list_size_for_search\s*=\s*'?256", sql), sql[-300:]


def test_the_vector_index_is_built_on_every_shard_table(stores: tuple[Store, Store]) -> None:
    ddl = [flat(s) for s in stores[1].night(0) if re.search(r"vector_similarity|materialize index", s)]
    ddl = [s for s in ddl if s.startswith("alter")]
    add = [s for s in ddl if "add index" in s]
    assert len(add) == 1
    assert add[0].startswith(f'alter table `analytics`.`photos_local` on cluster "{CLUSTER}" add index if not exists')
    assert "type vector_similarity('hnsw', 'cosineDistance', 512, 'bf16', 32, 128) granularity 100000000" in add[0]
    assert all("`analytics`.`photos_local`" in s for s in ddl), ddl


def test_nights_delete_insert_and_patch_on_the_shards(stores: tuple[Store, Store]) -> None:
    night = [flat(s) for s in stores[1].night(1)]
    on = f'on cluster "{CLUSTER}"'
    # the new rows, through a Distributed table, to the shards their photo_id hashes to
    assert any(
        s.lower().startswith("insert into `analytics`.`photos` select")
        and "from `analytics`.`photos__dbt_distributed_new_data`" in s
        for s in night
    )
    deletes = [s for s in night if s.lower().startswith("delete from")]
    assert len(deletes) == 2, deletes  # the changed photos' old rows, the removed photos
    for sql in deletes:
        assert sql.lower().startswith(f"delete from `analytics`.`photos_local` {on}".lower()), sql
        assert "lightweight_delete_mode" in sql and "lightweight_update_force" in sql, sql
    patches = [s for s in night if "apply patches" in s]
    assert patches and all(s.startswith(f"alter table `analytics`.`photos_local` {on} apply patches") for s in patches)
    # nothing alters, deletes from or optimizes the Distributed table itself
    assert not [s for s in night if re.match(r"(alter table|delete from|optimize table) `analytics`.`photos` ", s)]


def test_models_run_the_single_servers_sql(stores: tuple[Store, Store]) -> None:
    single, sharded = stores
    for night in (0, 1):
        assert set(single.compiled[night]) == set(sharded.compiled[night])
        differ = {name for name, sql in single.compiled[night].items() if sharded.compiled[night][name] != sql}
        # only the two tests that read the engine's state of the photos' parts: every replica's on a cluster
        assert {name.rsplit("/", 1)[-1].split(".")[0] for name in differ} <= {
            "vector_index_built_photos_",
            "photos_deleted_rows",
        }, f"night {night}: differ on the cluster: {sorted(differ)}"
        assert any(".yml/" not in name for name in single.compiled[night])


def table_definitions(store: Path, names: list[str]) -> dict[str, str]:
    with client_for("embedded", path=store) as client:
        rows = client.query(
            "SELECT database || '.' || name, create_table_query FROM system.tables "
            "WHERE has({names:Array(String)}, database || '.' || name)",
            parameters={"names": names},
        ).result_rows
    return {str(name): str(sql) for name, sql in rows}


def test_each_shard_holds_the_single_servers_table(stores: tuple[Store, Store]) -> None:
    single, sharded = stores
    names = sorted(PHOTO_KEYED | {"analytics.keyword_search_relevance"})
    expected = table_definitions(single.path, names)
    got = table_definitions(sharded.path, [n + "_local" for n in names])
    assert set(expected) == set(names)
    for name in names:
        # the emulation runs the Replicated engine as the plain one; insert deduplication (a replicated
        # table's matter) is off in dbt-clickhouse's tables on one server, and off in the photos tables on
        # the cluster (the model's setting), on in the shards' mart tables, which every run makes anew;
        # each load stamps its own id; the rest must match to the letter
        local, single_table = (
            re.sub(
                r"replicated_deduplication_window = 0, |, replicated_deduplication_window = 0|\"load\": \"\w+\"",
                "",
                sql.replace("window = '0'", "window = 0"),
            )
            for sql in (got[name + "_local"].replace(name + "_local", name), expected[name])
        )
        assert local == single_table, f"{name}:\n{local}\n!=\n{single_table}"
    assert "INDEX photo_embed_idx photo_embed TYPE vector_similarity" in got["analytics.photos_local"]


def rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with client_for("embedded", path=store) as client:
        found = client.query(sql).result_rows
    return sorted(tuple(round(v, 6) if isinstance(v, float) else str(v) for v in r) for r in found)


def test_the_marts_are_the_single_servers(stores: tuple[Store, Store]) -> None:
    single, sharded = stores
    for name, sql in MARTS.items():
        expected = rows(single.path, sql)
        assert expected, name
        assert rows(sharded.path, sql) == expected, name


def test_shards_searched_apart_then_merged_give_the_single_servers_neighbours(stores: tuple[Store, Store]) -> None:
    """What a Distributed table does with `order by dist limit n`, by hand: the photos split by the
    sharding key into two tables with their own graphs, each searched with the full limit, the
    answers merged; it must be the single server's answer, k rows, each shard's index used."""
    single, sharded = stores
    n = VARS["top_k"] + 1
    search = (
        "WITH (SELECT photo_embed FROM analytics.photos WHERE photo_id = {target:String}) AS target "
        "SELECT photo_id, cosineDistance(photo_embed, target) AS dist FROM analytics.{table} "
        f"ORDER BY dist LIMIT {n} SETTINGS vector_search_with_rescoring = 1"
    )
    targets = ("p0042", "p0007", "n0161")
    with client_for("embedded", path=single.path) as client:
        expected = {
            t: client.query(search.replace("{table}", "photos"), parameters={"target": t}).result_rows for t in targets
        }
    with client_for("embedded", path=sharded.path) as client:
        for shard in (0, 1):
            client.command(f"CREATE OR REPLACE TABLE analytics.shard_{shard} AS analytics.photos_local")
            client.command(
                f"INSERT INTO analytics.shard_{shard} SELECT * FROM analytics.photos_local "
                f"WHERE {PHOTO_KEY} % 2 = {shard}"
            )
        sizes = [client.command(f"SELECT count() FROM analytics.shard_{shard}") for shard in (0, 1)]
        assert all(size > n for size in sizes), sizes
        plan = client.query(
            "EXPLAIN indexes = 1 " + search.replace("{table}", "shard_1"), parameters={"target": "p0042"}
        ).result_rows
        assert "Name: photo_embed_idx" in "\n".join(str(r[0]) for r in plan)  # the shard's own graph answers
        for target in targets:
            answers = [
                client.query(search.replace("{table}", f"shard_{shard}"), parameters={"target": target}).result_rows
                for shard in (0, 1)
            ]
            merged = sorted((dist, photo) for rows in answers for photo, dist in rows)[:n]
            assert len(merged) == n
            assert [p for _, p in merged] == [p for p, _ in expected[target]], target


def refused_build(tmp_path: Path, cluster: EmulatedCluster, monkeypatch: pytest.MonkeyPatch, requested: str) -> str:
    """`bildsuche dbt build` on the emulated cluster: its exit code 2 or 1 and its message, nothing sent but
    the check's reads."""
    import bildsuche.store
    from bildsuche.cli import main

    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        cluster.setup(client)
    monkeypatch.setattr(bildsuche.store, "open_client", lambda *a, **k: cluster.client(connect(store)))
    monkeypatch.setenv("CLICKHOUSE_CLUSTER", requested)
    monkeypatch.setenv("BILDSUCHE_TARGET", "clickhouse")
    code = main(["dbt", "build"])
    assert code in (1, 2)
    assert not cluster.ddl()
    return str(code)


def test_an_unknown_cluster_is_refused_by_name(
    tmp_path: Path, synthetic: SyntheticDataset, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused_build(tmp_path, EmulatedCluster(), monkeypatch, "bildsuche_3x1") == "2"
    assert f"cluster 'bildsuche_3x1' is not defined on the server (its clusters: {CLUSTER})" in capsys.readouterr().err
    cluster = EmulatedCluster()
    with client_for("embedded", path=tmp_path / "store") as inner, pytest.raises(UsageError, match="bildsuche_3x1"):
        load(cluster.client(inner), synthetic.directory, cluster="bildsuche_3x1")
    assert not cluster.ddl()


def test_a_shard_without_a_live_replica_is_refused(
    tmp_path: Path, synthetic: SyntheticDataset, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused_build(tmp_path, EmulatedCluster(down=(2,)), monkeypatch, CLUSTER) == "1"
    assert "shard 2 of cluster 'bildsuche_2x2' does not answer on any replica (ch-s2-r1:9000, ch-s2-r2:9000)" in (
        capsys.readouterr().err
    )
    cluster = EmulatedCluster(down=(2,))
    with (
        client_for("embedded", path=tmp_path / "store") as inner,
        pytest.raises(StoreUnavailableError, match="shard 2"),
    ):
        load(cluster.client(inner), synthetic.directory, cluster=CLUSTER)
    assert not cluster.ddl()


def test_a_full_refresh_rebuilds_the_shards_with_the_same_marts(stores: tuple[Store, Store], tmp_path: Path) -> None:
    """Last: it rebuilds the sharded store's photos (every other test has read it by then)."""
    sharded = stores[1]
    cluster = sharded.cluster
    assert cluster is not None
    before = {name: rows(sharded.path, sql) for name, sql in MARTS.items()}
    start = len(cluster.statements)
    with environment({"DBT_TARGET_PATH": str(tmp_path / "target")}), dbt_on(cluster, sharded.path):
        run_dbt(["build", "--full-refresh", "--select", "photos+"], db_path=sharded.path, dbt_vars=VARS, quiet=True)
    assert {name: rows(sharded.path, sql) for name, sql in MARTS.items()} == before
    assert rows(sharded.path, "SELECT DISTINCT generation FROM analytics.photos") == [("0",)]
    rebuilt = [flat(s) for s in cluster.statements[start:]]
    # dbt-clickhouse builds the shards' new tables beside the old ones and renames them in, on every node
    assert f'rename table `analytics`.`photos_local__dbt_tmp` to `analytics`.`photos_local` ON CLUSTER "{CLUSTER}"' in (
        rebuilt
    )
    index = f'alter table `analytics`.`photos_local` on cluster "{CLUSTER}" add index'
    assert any(s.startswith(index) for s in rebuilt)


def test_only_the_clickhouse_target_is_sharded(monkeypatch: pytest.MonkeyPatch) -> None:
    from bildsuche import config
    from bildsuche.cli.rundbt import dbt_target

    monkeypatch.setenv("CLICKHOUSE_CLUSTER", f" {CLUSTER} ")
    monkeypatch.delenv("BILDSUCHE_TARGET", raising=False)
    assert config.cluster_name() == ""  # the embedded store is one process's
    assert config.cluster_name("clickhouse") == CLUSTER
    assert config.cluster_name("myscale") == ""
    assert dbt_target(["build", "--target", "clickhouse"]) == "clickhouse"
    assert dbt_target(["build", "-t", "myscale", "--select", "photos"]) == "myscale"
    assert dbt_target(["build", "--target=clickhouse"]) == "clickhouse"
    monkeypatch.setenv("BILDSUCHE_TARGET", "clickhouse")
    assert dbt_target(["build"]) == "clickhouse" and config.cluster_name() == CLUSTER
    monkeypatch.setenv("CLICKHOUSE_CLUSTER", "")
    assert config.cluster_name() == ""
