"""seeds_loader: streaming, idempotent, refusing bad files with the store unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.client import Client

from bildsuche.dataset import MODEL_METADATA_KEY
from bildsuche.errors import EmbeddingModelMismatchError, InputDataError, StoreUnavailableError
from bildsuche.store import client_for
from datasets_helpers import SYNTHETIC_MODEL, SyntheticDataset, conversions_table, photos_table, write_synthetic
from seeds_loader import commit, load
from seeds_loader.loader import Changes
from seeds_loader.schema import PHOTOS


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[Client]:
    with client_for("embedded", path=tmp_path / "store") as c:
        yield c


def snapshot(client: Client) -> dict[str, object]:
    """Everything a bad load must leave alone."""
    return {
        "photos": client.query("SELECT photo_id, photo_embed FROM raw.photos ORDER BY photo_id").result_rows,
        "conversions": client.query("SELECT id, photo_id, keyword FROM raw.conversions ORDER BY id").result_rows,
        "tables": client.query("SELECT name FROM system.tables WHERE database = 'raw' ORDER BY name").result_rows,
    }


def test_load_stores_every_row_with_float32_vectors(client: Client, synthetic: SyntheticDataset) -> None:
    seen: list[tuple[str, int, int]] = []
    report = load(client, synthetic.directory, progress=lambda t, d, n: seen.append((t, d, n)))
    assert report.rows == {"photos": 240, "conversions": len(synthetic.conversions)}
    rows = client.query("SELECT photo_id, photo_embed FROM raw.photos").result_rows
    stored = {pid: np.array(vec, dtype=np.float32) for pid, vec in rows}
    assert set(stored) == set(synthetic.photo_ids)
    for pid in synthetic.photo_ids[:20]:
        np.testing.assert_array_equal(stored[pid], synthetic.embeddings[synthetic.index(pid)])
    assert seen[-1] == ("conversions", len(synthetic.conversions), len(synthetic.conversions))
    assert ("photos", 240, 240) in seen


def test_raw_tables_carry_the_length_constraint_and_lookup_keys(client: Client, synthetic: SyntheticDataset) -> None:
    load(client, synthetic.directory)
    ddl = client.command("SHOW CREATE TABLE raw.photos")
    assert "CONSTRAINT vector_len CHECK length(photo_embed) = 512" in ddl
    assert "ORDER BY photo_id" in ddl
    assert "ORDER BY (photo_id, id)" in client.command("SHOW CREATE TABLE raw.conversions")
    with pytest.raises(Exception, match="vector_len"):
        client.command(
            "INSERT INTO raw.photos (id, photo_id, photo_image_url, photo_embed) VALUES (1, 's', 'u', [1.0])"
        )


def test_loading_twice_leaves_one_copy(client: Client, synthetic: SyntheticDataset) -> None:
    load(client, synthetic.directory)
    first = snapshot(client)
    load(client, synthetic.directory)
    assert snapshot(client) == first
    assert client.command("SELECT count() FROM raw.photos") == 240


@pytest.mark.parametrize("value_type", [pa.float64(), pa.float32()])
def test_float64_and_fixed_size_lists_are_accepted(tmp_path: Path, client: Client, value_type: pa.DataType) -> None:
    data = write_synthetic(tmp_path / "d", n=30, value_type=value_type)
    table = pq.read_table(data.directory / "photos.parquet")
    fixed = pa.FixedSizeListArray.from_arrays(table.column("photo_embed").combine_chunks().flatten(), 512)
    pq.write_table(table.set_column(3, "photo_embed", fixed), data.directory / "photos.parquet")
    load(client, data.directory)
    vec = client.query("SELECT photo_embed FROM raw.photos WHERE photo_id = 'p0001'").result_rows[0][0]
    np.testing.assert_allclose(vec, data.embeddings[1], rtol=1e-6)


def test_missing_conversions_file_keeps_existing_conversions(client: Client, synthetic: SyntheticDataset) -> None:
    load(client, synthetic.directory)
    before = snapshot(client)["conversions"]
    (synthetic.directory / "conversions.parquet").unlink()
    report = load(client, synthetic.directory)
    assert report.skipped == ["conversions", "keywords", "collections", "colors"]
    assert snapshot(client)["conversions"] == before


def _corrupt(directory: Path, how: str) -> str:
    """Damage photos.parquet in one way; return the expected error fragment."""
    path = directory / "photos.parquet"
    table = pq.read_table(path)
    rng = np.random.default_rng(0)
    if how == "wrong_dim":
        emb = rng.standard_normal((5, 384)).astype(np.float32)
        pq.write_table(photos_table([f"w{i}" for i in range(5)], emb), path)
        return "384-dimensional"
    if how == "mixed_dim":
        emb = table.column("photo_embed").to_pylist()
        emb[7] = emb[7][:511]
        pq.write_table(table.set_column(3, "photo_embed", pa.array(emb, type=pa.list_(pa.float32()))), path)
        return "'p0007' has a 511-dimensional"
    if how in ("nan", "inf"):
        emb = table.column("photo_embed").to_pylist()
        emb[3][10] = float("nan") if how == "nan" else float("inf")
        pq.write_table(table.set_column(3, "photo_embed", pa.array(emb, type=pa.list_(pa.float32()))), path)
        return "'p0003' has NaN, infinite"
    if how == "missing_column":
        pq.write_table(table.drop_columns(["photo_image_url"]), path)
        return "missing column(s) photo_image_url"
    if how == "duplicate":
        ids = table.column("photo_id").to_pylist()
        ids[9] = ids[8]
        pq.write_table(table.set_column(1, "photo_id", pa.array(ids)), path)
        return "'p0008' appears more than once"
    if how == "null_id":
        ids = table.column("photo_id").to_pylist()
        ids[2] = None
        pq.write_table(table.set_column(1, "photo_id", pa.array(ids, type=pa.string())), path)
        return "without photo_id"
    if how == "string_vectors":
        pq.write_table(table.set_column(3, "photo_embed", pa.array(["x"] * table.num_rows)), path)
        return "column photo_embed has type string"
    if how == "not_parquet":
        path.write_bytes(b"id,photo_id\n1,a\n")
        return "not a readable parquet file"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["wrong_dim", "mixed_dim", "nan", "inf", "missing_column", "duplicate", "null_id", "string_vectors", "not_parquet"],
)
def test_bad_photos_file_is_refused_and_store_unchanged(
    tmp_path: Path, client: Client, synthetic: SyntheticDataset, how: str
) -> None:
    load(client, synthetic.directory)
    before = snapshot(client)
    bad = write_synthetic(tmp_path / "bad", n=40, seed=9)
    expected = _corrupt(bad.directory, how)
    # Another dimension is refused by name as another model's embeddings, not as a broken file.
    error = EmbeddingModelMismatchError if how == "wrong_dim" else InputDataError
    with pytest.raises(error, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load(client, bad.directory)
    assert snapshot(client) == before


def test_bad_conversions_file_is_refused_before_photos_change(
    tmp_path: Path, client: Client, synthetic: SyntheticDataset
) -> None:
    load(client, synthetic.directory)
    before = snapshot(client)
    bad = write_synthetic(tmp_path / "bad", n=40, seed=9)
    pq.write_table(conversions_table([("p0001", "x")]).drop_columns(["keyword"]), bad.directory / "conversions.parquet")
    with pytest.raises(InputDataError, match="missing column"):
        load(client, bad.directory)
    assert snapshot(client) == before


def test_conversions_without_photo_id_are_refused_mid_stream(
    tmp_path: Path, client: Client, synthetic: SyntheticDataset
) -> None:
    load(client, synthetic.directory)
    before = snapshot(client)
    bad = write_synthetic(tmp_path / "bad", n=40, seed=9)
    rows = pq.read_table(bad.directory / "conversions.parquet")
    ids = rows.column("photo_id").to_pylist()
    ids[-1] = None
    pq.write_table(
        rows.set_column(1, "photo_id", pa.array(ids, type=pa.string())), bad.directory / "conversions.parquet"
    )
    with pytest.raises(InputDataError, match=r"1 row\(s\) without photo_id"):
        load(client, bad.directory)
    assert snapshot(client) == before


def test_other_dimension_is_allowed_when_declared(tmp_path: Path, client: Client) -> None:
    data = write_synthetic(tmp_path / "d", n=20, dim=64)
    load(client, data.directory, dim=64)
    assert "length(photo_embed) = 64" in client.command("SHOW CREATE TABLE raw.photos")


def test_no_photos_file_is_an_error(tmp_path: Path, client: Client) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match=r"no photos\.parquet"):
        load(client, tmp_path / "empty")
    assert PHOTOS.file_name == "photos.parquet"


def models_stored(client: Client) -> dict[str, int]:
    return dict(client.query("SELECT embed_model, count() FROM raw.photos GROUP BY embed_model").result_rows)


def test_the_recorded_model_is_stored_with_every_photo(client: Client, synthetic: SyntheticDataset) -> None:
    report = load(client, synthetic.directory)
    assert report.embed_model == SYNTHETIC_MODEL and report.warnings == []
    assert models_stored(client) == {SYNTHETIC_MODEL: 240}
    types = dict(
        client.query("SELECT name, type FROM system.columns WHERE database = 'raw' AND table = 'photos'").result_rows
    )
    assert types["embed_model"] == "LowCardinality(String)"


@pytest.mark.parametrize("column", ["embed_model", "model"])
def test_a_per_row_model_column_names_the_model(tmp_path: Path, client: Client, column: str) -> None:
    data = write_synthetic(tmp_path / "d", n=30)
    path = data.directory / "photos.parquet"
    table = pq.read_table(path)
    # Rows that name no model take the one in the file's metadata.
    names = [None if i % 5 == 0 else SYNTHETIC_MODEL for i in range(30)]
    pq.write_table(table.append_column(column, pa.array(names, pa.string())), path)
    report = load(client, data.directory)
    assert report.embed_model == SYNTHETIC_MODEL
    assert models_stored(client) == {SYNTHETIC_MODEL: 30}
    columns = client.query("SELECT name FROM system.columns WHERE database = 'raw' AND table = 'photos'").result_rows
    assert [c[0] for c in columns] == ["id", "photo_id", "photo_image_url", "photo_embed", "embed_model", "row_hash"]


def test_a_file_that_records_no_model_loads_as_unknown_with_a_warning(tmp_path: Path, client: Client) -> None:
    data = write_synthetic(tmp_path / "d", n=20, model=None)
    report = load(client, data.directory)
    assert report.embed_model == "unknown"
    assert len(report.warnings) == 1 and "--embed-model" in report.warnings[0]
    assert models_stored(client) == {"unknown": 20}
    report = load(client, data.directory, embed_model="openai/clip-vit-base-patch32")
    assert report.warnings == []
    assert models_stored(client) == {"openai/clip-vit-base-patch32": 20}


def test_photos_of_several_models_are_refused(tmp_path: Path, client: Client, synthetic: SyntheticDataset) -> None:
    load(client, synthetic.directory)
    before = snapshot(client)
    bad = write_synthetic(tmp_path / "bad", n=40)
    path = bad.directory / "photos.parquet"
    names = ["model-a"] * 30 + ["model-b"] * 10
    pq.write_table(pq.read_table(path).append_column("embed_model", pa.array(names)), path)
    with pytest.raises(
        InputDataError, match=r"2 models \(column embed_model\): model-a \(30 photos\), model-b \(10 photos\)"
    ):
        load(client, bad.directory)
    assert snapshot(client) == before
    assert models_stored(client) == {SYNTHETIC_MODEL: 240}


def test_a_declared_model_must_agree_with_the_file(tmp_path: Path, client: Client) -> None:
    data = write_synthetic(tmp_path / "d", n=20)
    with pytest.raises(InputDataError, match="records embedding model 'synthetic-clip', not 'other'"):
        load(client, data.directory, embed_model="other")
    assert load(client, data.directory, embed_model=SYNTHETIC_MODEL).embed_model == SYNTHETIC_MODEL


def test_a_model_column_of_another_type_is_photo_metadata(tmp_path: Path, client: Client) -> None:
    data = write_synthetic(tmp_path / "d", n=20)
    path = data.directory / "photos.parquet"
    table = pq.read_table(path)
    table = table.append_column("model", pa.array(range(20), pa.int64()))
    pq.write_table(table.replace_schema_metadata({MODEL_METADATA_KEY: b"m1"}), path)
    load(client, data.directory)
    assert models_stored(client) == {"m1": 20}
    assert client.command("SELECT sum(model) FROM raw.photos") == sum(range(20))


# --- changed sets ----------------------------------------------------------------------------------------------


def _night(tmp_path: Path, name: str, ids: list[str], embeddings: np.ndarray, model: str = SYNTHETIC_MODEL) -> Path:
    """A data set whose photos keep their id and URL from set to set, as python_embed's do."""
    table = photos_table(ids, embeddings)
    table = table.set_column(0, "id", pa.array([int(p[1:]) for p in ids], pa.int64()))
    table = table.set_column(2, "photo_image_url", pa.array([f"https://images.example/{p}" for p in ids]))
    directory = tmp_path / name
    directory.mkdir()
    pq.write_table(table.replace_schema_metadata({MODEL_METADATA_KEY: model.encode()}), directory / "photos.parquet")
    pq.write_table(conversions_table([(p, "kw") for p in ids[::3]]), directory / "conversions.parquet")
    return directory


def _vectors(n: int, seed: int, dim: int = 512) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _photos(client: Client) -> list[tuple[object, ...]]:
    return client.query(
        "SELECT id, photo_id, photo_image_url, photo_embed FROM raw.photos ORDER BY photo_id"
    ).result_rows


def test_a_changed_set_is_loaded_as_its_changes_and_equals_a_fresh_load(tmp_path: Path, client: Client) -> None:
    ids, x = [f"q{i:03d}" for i in range(60)], _vectors(60, 1)
    load(client, _night(tmp_path, "one", ids, x))
    kept = [i for i in range(60) if i not in (4, 9, 30)]
    y = x[kept].copy()
    y[0], y[10] = _vectors(2, 2)  # two photos re-embedded
    later = [ids[i] for i in kept] + ["q100", "q101", "q102", "q103"]
    two = _night(tmp_path, "two", later, np.concatenate([y, _vectors(4, 3)]))
    report = load(client, two)
    assert report.changes["photos"] == Changes(added=4, changed=2, removed=3)
    assert report.rows == {"photos": 61, "conversions": 21}
    # What a fresh load of the file holds (one process opens one store: compared with the file).
    expected = pq.read_table(two / "photos.parquet").sort_by("photo_id").select(["id", "photo_id", "photo_image_url"])
    got = _photos(client)
    assert [row[:3] for row in got] == [tuple(r.values()) for r in expected.to_pylist()]
    np.testing.assert_array_equal(
        np.array([row[3] for row in got], np.float32),
        np.array(
            pq.read_table(two / "photos.parquet").sort_by("photo_id").column("photo_embed").to_pylist(), np.float32
        ),
    )
    again = load(client, two)
    assert again.unchanged == ["photos", "conversions"] and again.rows == {}


def test_photos_of_another_model_are_refused_by_name_unless_a_full_refresh(tmp_path: Path, client: Client) -> None:
    ids = [f"q{i:03d}" for i in range(20)]
    load(client, _night(tmp_path, "one", ids, _vectors(20, 1)))
    before = snapshot(client)
    other = _night(tmp_path, "other", ids, _vectors(20, 2, dim=384), model="other-clip")
    with pytest.raises(
        EmbeddingModelMismatchError, match=r"384-dimensional .* other-clip.* 512-dimensional .* synthetic-clip"
    ):
        load(client, other)
    assert snapshot(client) == before
    same_dim = _night(tmp_path, "same-dim", ids, _vectors(20, 3), model="other-clip")
    with pytest.raises(EmbeddingModelMismatchError, match=r"other-clip.*synthetic-clip.*--full-refresh"):
        load(client, same_dim)
    assert snapshot(client) == before
    load(client, other, full_refresh=True)
    assert models_stored(client) == {"other-clip": 20}
    assert "length(photo_embed) = 384" in client.command("SHOW CREATE TABLE raw.photos")


def test_a_commit_whose_tables_are_gone_asks_for_a_full_refresh(tmp_path: Path, client: Client) -> None:
    ids = [f"q{i:03d}" for i in range(20)]
    one = _night(tmp_path, "one", ids, _vectors(20, 1))
    load(client, one)
    commit.write_record(client, "lost", ["photos"])  # committed, then its staging table dropped by hand
    with pytest.raises(StoreUnavailableError, match=r"raw\.photos__loading is gone.*--full-refresh"):
        load(client, one)
    load(client, one, full_refresh=True)
    assert client.command("EXISTS TABLE raw.load__commit") == 0
    assert client.command("SELECT count() FROM raw.photos") == 20
