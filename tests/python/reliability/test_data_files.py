"""Malformed data files: a clear error naming the file, or a documented repair; nothing stored is lost.

Unsplash Lite TSVs go through `python_embed build` (earlier outputs in --out
must survive a refused source); parquet files through `seeds_loader` (the raw
tables must survive a refused file).  tests/python/test_loader.py holds nine
more parquet cases (wrong and mixed dimensions, NaN, inf, missing column,
duplicate ids, null ids, string vectors, not parquet).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.client import Client
from PIL import Image

from bildsuche.errors import InputDataError
from bildsuche.store import client_for
from datasets_helpers import conversions_table, write_synthetic
from python_embed.build import build
from python_embed.embedder import ClipEmbedder
from reliability.payloads import file_names
from reliability.stores import RAW_FINGERPRINT_SQL
from seeds_loader import load

HEADER = b"photo_id\tphoto_image_url\tphoto_description\n"


@pytest.fixture(scope="module")
def photo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("img") / "p.jpg"
    Image.new("RGB", (64, 48), "teal").save(path)
    return path.resolve().as_uri()


def rows(url: str, *ids: str) -> bytes:
    return b"".join(f"{pid}\t{url}\tdesc {pid}\n".encode() for pid in ids)


# name -> (photos.tsv000 content from a photo URL, error pattern or None, photo ids embedded when repaired)
def tsv_cases(url: str) -> dict[str, tuple[bytes, str | None, list[str]]]:
    good = HEADER + rows(url, "a", "b")
    return {
        "byte_order_mark": (b"\xef\xbb\xbf" + good, None, ["a", "b"]),
        "windows_line_ends": (good.replace(b"\n", b"\r\n"), None, ["a", "b"]),
        "blank_lines": (HEADER + b"\n" + rows(url, "a") + b"\n\n" + rows(url, "b"), None, ["a", "b"]),
        "quoted_tab_and_newline": (HEADER + f'a\t{url}\t"x\ty\nz"\n'.encode(), None, ["a"]),
        "nul_in_a_value": (HEADER + f"a\t{url}\tx\x00y\n".encode(), None, ["a"]),
        "extra_field": (good + f"c\t{url}\td\tEXTRA\n".encode(), "Expected 3 columns, got 4", []),
        "missing_field": (good + b"c\tonly-two\n", "Expected 3 columns, got 2", []),
        "unterminated_quote": (good + f'"c\t{url}\td\n'.encode(), "malformed tab-separated data", []),
        "not_utf8_value": (good + f"c\t{url}\t".encode() + b"caf\xe9\n", "invalid UTF8", []),
        "not_utf8_header": (b"photo_\xffid\tphoto_image_url\n" + rows(url, "a"), "header is not UTF-8", []),
        "utf16": (good.decode().encode("utf-16"), "header is not UTF-8", []),
        "empty_file": (b"", "empty file", []),
        "header_only": (HEADER, "no photos to embed", []),
        "missing_url_column": (b"photo_id\tdescription\na\tx\n", "no photo_image_url column", []),
        "missing_id_column": (b"id\tphoto_image_url\n1\tx\n", "no photo_id column", []),
        "duplicate_header": (
            b"photo_id\tphoto_id\tphoto_image_url\na\tb\tc\n",
            "names column\\(s\\) 'photo_id' twice",
            [],
        ),
    }


def release(path: Path, photos: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("lite/photos.tsv000", photos)
    return path


@pytest.fixture(scope="module")
def earlier_build(tmp_path_factory: pytest.TempPathFactory, photo_url: str, demo_model_dir: Path) -> Path:
    """An --out folder holding a finished build: a refused source must leave it as it is."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    source = release(out.parent / "good.zip", HEADER + rows(photo_url, "kept1", "kept2"))
    build(str(source), out, lambda: ClipEmbedder(str(demo_model_dir)))
    return out


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.mark.parametrize("case", list(tsv_cases("file:///x.jpg")))
def test_unsplash_tsv_is_refused_clearly_or_repaired(
    tmp_path: Path, photo_url: str, earlier_build: Path, demo_model_dir: Path, case: str
) -> None:
    content, error, embedded = tsv_cases(photo_url)[case]
    source = release(tmp_path / "lite.zip", content)
    before = outputs(earlier_build)
    if error:
        with pytest.raises(InputDataError, match=error) as caught:
            build(str(source), earlier_build, lambda: ClipEmbedder(str(demo_model_dir)))
        assert "photos.tsv000" in str(caught.value) or "lite.zip" in str(caught.value)
        assert outputs(earlier_build) == before
        assert not (earlier_build / ".bildsuche-build").exists()
    else:
        out = tmp_path / "out"
        build(str(source), out, lambda: ClipEmbedder(str(demo_model_dir)))
        assert pq.read_table(out / "photos.parquet").column("photo_id").to_pylist() == embedded
        assert pq.read_table(out / "failures.parquet").num_rows == 0


def test_duplicate_and_missing_ids_become_failures(tmp_path: Path, photo_url: str, demo_model_dir: Path) -> None:
    content = HEADER + rows(photo_url, "a", "b", "a") + f"\t{photo_url}\tno id\n".encode() + b"c\t\tno url\n"
    out = tmp_path / "out"
    build(str(release(tmp_path / "lite.zip", content)), out, lambda: ClipEmbedder(str(demo_model_dir)))
    assert pq.read_table(out / "photos.parquet").column("photo_id").to_pylist() == ["a", "b"]
    failures = pq.read_table(out / "failures.parquet").select(["photo_id", "stage", "reason"]).to_pylist()
    assert failures == [
        {"photo_id": "a", "stage": "read", "reason": "duplicate photo_id"},
        {"photo_id": "<row 3>", "stage": "read", "reason": "no photo_id"},
        {"photo_id": "c", "stage": "read", "reason": "no photo_image_url"},
    ]


def _tutorial(path: Path, vectors: list[list[float] | None]) -> Path:
    n = len(vectors)
    pq.write_table(
        pa.table(
            {
                "photo_id": [f"t{i}" for i in range(n)],
                "photo_image_url": [f"https://images.example/t{i}" for i in range(n)],
                "photo_embed": pa.array(vectors, pa.list_(pa.float64())),
            }
        ),
        path,
    )
    return path


def test_precomputed_embeddings_with_nan_inf_or_no_values_become_failures(tmp_path: Path) -> None:
    unit = list(np.eye(8)[0])
    broken = {"t1": [np.nan] * 8, "t2": [1.0, np.inf, *[0.0] * 6], "t3": [], "t4": [0.5, None, *[0.0] * 6]}
    vectors = [unit, broken["t1"], broken["t2"], broken["t3"], broken["t4"], unit]
    source = _tutorial(tmp_path / "photos-all.parquet", vectors)  # type: ignore[arg-type]
    out = tmp_path / "out"
    build(str(source), out, lambda: pytest.fail("nothing needs the model"))  # type: ignore[arg-type,return-value]
    assert pq.read_table(out / "photos.parquet").column("photo_id").to_pylist() == ["t0", "t5"]
    reasons = {r["photo_id"]: r["reason"] for r in pq.read_table(out / "failures.parquet").to_pylist()}
    assert reasons == {
        "t1": "photo_embed has NaN, infinite or null values",
        "t2": "photo_embed has NaN, infinite or null values",
        "t3": "photo_embed is empty",
        "t4": "photo_embed has NaN, infinite or null values",
    }


def test_precomputed_embeddings_of_two_lengths_are_refused(tmp_path: Path) -> None:
    source = _tutorial(tmp_path / "photos-all.parquet", [[1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0]])
    with pytest.raises(InputDataError, match=r"vectors of 2 lengths \(2, 3\)"):
        build(str(source), tmp_path / "out", lambda: pytest.fail("refused first"))  # type: ignore[arg-type,return-value]
    assert not (tmp_path / "out" / "photos.parquet").exists()


# --- seeds_loader: parquet files -------------------------------------------------------------------------------


@pytest.fixture()
def loaded(tmp_path: Path) -> Iterator[tuple[Client, str]]:
    """A store holding the synthetic data set, and its fingerprint."""
    data = write_synthetic(tmp_path / "good", n=60)
    with client_for("embedded", path=tmp_path / "store") as client:
        load(client, data.directory)
        yield client, str(client.query(RAW_FINGERPRINT_SQL).result_rows)


def _broken_photos(directory: Path, how: str) -> str:
    """Damage directory/photos.parquet one more way; return the expected error."""
    path = directory / "photos.parquet"
    table = pq.read_table(path)
    embeds = table.column("photo_embed")
    if how == "empty_file":
        path.write_bytes(b"")
        return "not a readable parquet file"
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return "not a readable parquet file"
    if how == "zero_rows":
        pq.write_table(table.slice(0, 0), path)
        return "no photos; loading it would empty raw.photos"
    if how == "integer_vectors":
        pq.write_table(table.set_column(3, "photo_embed", embeds.cast(pa.list_(pa.int32()), safe=False)), path)
        return "column photo_embed has type list<element: int32>"
    if how == "nested_vectors":
        nested = pa.array([[v] for v in embeds.to_pylist()], pa.list_(pa.list_(pa.float32())))
        pq.write_table(table.set_column(3, "photo_embed", nested), path)
        return "column photo_embed has type list<element: list<element: float>>"
    if how == "empty_vector":
        vectors = embeds.to_pylist()
        vectors[4] = []
        pq.write_table(table.set_column(3, "photo_embed", pa.array(vectors, pa.list_(pa.float32()))), path)
        return "has a 0-dimensional photo_embed"
    if how == "null_in_vector":
        vectors = embeds.to_pylist()
        vectors[2][5] = None
        pq.write_table(table.set_column(3, "photo_embed", pa.array(vectors, pa.list_(pa.float32()))), path)
        return "NaN, infinite or null values"
    if how == "binary_ids":
        ids = pa.array([b"\xff\xfe" + str(i).encode() for i in range(table.num_rows)], pa.binary())
        pq.write_table(table.set_column(1, "photo_id", ids), path)
        return "column photo_id has type binary"
    if how == "integer_ids":
        pq.write_table(table.set_column(1, "photo_id", pa.array(range(table.num_rows), pa.int64())), path)
        return "column photo_id has type int64"
    if how == "directory_not_file":
        path.unlink()
        path.mkdir()
        return "photos.parquet"
    raise AssertionError(how)


BROKEN_PHOTOS = [
    "empty_file", "truncated", "zero_rows", "integer_vectors", "nested_vectors", "empty_vector", "null_in_vector",
    "binary_ids", "integer_ids", "directory_not_file",
]  # fmt: skip


@pytest.mark.parametrize("how", BROKEN_PHOTOS)
def test_broken_photos_file_is_refused_and_the_store_unchanged(
    tmp_path: Path, loaded: tuple[Client, str], how: str
) -> None:
    client, before = loaded
    bad = write_synthetic(tmp_path / "bad", n=30, seed=5)
    expected = _broken_photos(bad.directory, how)
    with pytest.raises(InputDataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load(client, bad.directory)
    assert str(client.query(RAW_FINGERPRINT_SQL).result_rows) == before


@pytest.mark.parametrize("table", ["conversions", "keywords"])
@pytest.mark.parametrize("how", ["truncated", "wrong_id_type"])
def test_a_broken_companion_file_refuses_the_whole_load(
    tmp_path: Path, loaded: tuple[Client, str], table: str, how: str
) -> None:
    client, before = loaded
    bad = write_synthetic(tmp_path / "bad", n=30, seed=5)
    path = bad.directory / f"{table}.parquet"
    companion = conversions_table([("p0001", "x"), ("p0002", "y")])
    if how == "truncated":
        pq.write_table(companion, path)
        path.write_bytes(path.read_bytes()[:50])
    else:
        pq.write_table(companion.set_column(1, "photo_id", pa.array([1, 2], pa.int64())), path)
    with pytest.raises(InputDataError, match=f"{table}.parquet"):
        load(client, bad.directory)
    assert str(client.query(RAW_FINGERPRINT_SQL).result_rows) == before


def test_column_names_from_files_are_names_never_sql(tmp_path: Path, loaded: tuple[Client, str]) -> None:
    """Extra columns are created under their own names, whatever characters those hold."""
    client, _ = loaded
    data = write_synthetic(tmp_path / "names", n=20)
    table = pq.read_table(data.directory / "photos.parquet")
    names = ["ends with backslash \\", ") ENGINE = Memory AS SELECT 1 --", "two\nlines", *file_names()[:20]]
    names = [n for n in dict.fromkeys(names) if n not in table.column_names]
    for i, name in enumerate(names):
        table = table.append_column(name, pa.array([f"v{i}"] * table.num_rows))
    pq.write_table(table, data.directory / "photos.parquet")
    report = load(client, data.directory)
    # Names the insert client would read as quoted already are left out, and reported.
    left_out = [n for n in names if "`" in n or (len(n) > 1 and n[0] == n[-1] == '"')]
    assert report.columns_left_out == {"photos": left_out} and left_out
    names = [n for n in names if n not in left_out]
    columns = [
        r[0]
        for r in client.query("SELECT name FROM system.columns WHERE database = 'raw' AND table = 'photos'").result_rows
    ]
    assert columns == ["id", "photo_id", "photo_image_url", "photo_embed", "embed_model", "row_hash", *names]
    engine = client.command("SELECT engine FROM system.tables WHERE database = 'raw' AND name = 'photos'")
    assert engine == "MergeTree"
    assert client.command("SELECT count() FROM raw.photos") == 20


def test_stale_loading_tables_of_a_killed_load_are_dropped(tmp_path: Path, loaded: tuple[Client, str]) -> None:
    client, _ = loaded
    client.command("CREATE TABLE raw.keywords__loading (photo_id String) ENGINE = MergeTree ORDER BY photo_id")
    load(client, write_synthetic(tmp_path / "again", n=25).directory)
    tables = {r[0] for r in client.query("SELECT name FROM system.tables WHERE database = 'raw'").result_rows}
    assert not {t for t in tables if t.endswith("__loading")}
