"""Hypothesis properties of everything that turns user text into SQL, and of the file readers.

- quoting: for any text, the SQL literal (macros/literals.sql `sql_string`,
  bildsuche.sqltext) reads back as that text, and an identifier names exactly
  that column; int_var yields an integer in range or refuses; a dbt var passed
  by bildsuche renders to itself;
- the BI endpoint's statement splitter: no text it accepts as one statement
  makes the engine run a second one;
- the Unsplash TSV reader: any table written as the release writes it reads back;
- the parquet validator: it accepts exactly the files the loader can store,
  and the loader then stores exactly their rows.

Example counts: the `quick` Hypothesis profile, or `full` under `pytest --full`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.client import Client
from dbt.clients.jinja import get_rendered
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bildsuche.config import project_dir
from bildsuche.dbt import literal_var
from bildsuche.errors import InputDataError
from bildsuche.serve.sqlscan import MultiStatementError, single_statement
from bildsuche.sqltext import identifier, string_literal
from bildsuche.store import client_for
from python_embed.unsplash import Release
from seeds_loader import load
from seeds_loader.schema import PHOTOS
from seeds_loader.validate import scan

FIXTURES_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[Client]:
    with client_for("embedded", path=tmp_path / "store") as c:
        yield c


class CompilerError(Exception):
    pass


def _raise(message: str) -> None:
    raise CompilerError(message)


def literals_macros(var_values: dict[str, Any] | None = None) -> Any:
    """macros/literals.sql rendered with plain Jinja, as dbt renders it (`return` gives the macro's value)."""
    source = (project_dir() / "macros" / "literals.sql").read_text()
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    env.globals.update(
        {
            "return": lambda value: value,
            "var": lambda name: (var_values or {})[name],
            "exceptions": type("Exceptions", (), {"raise_compiler_error": staticmethod(_raise)}),
        }
    )
    return env.from_string(source).module


@FIXTURES_OK
@given(text=st.text())
def test_string_literals_read_back_as_the_text(client: Client, text: str) -> None:
    from_macro = str(literals_macros().sql_string(text))
    assert from_macro == string_literal(text)  # one quoting rule, in SQL and in Python
    assert client.query(f"SELECT {from_macro} AS v").result_rows == [(text,)]
    assert client.query(f"SELECT {from_macro} = {{v:String}}", parameters={"v": text}).result_rows == [(1,)]


@FIXTURES_OK
@given(name=st.text(min_size=1))
def test_identifiers_name_exactly_that_column(client: Client, name: str) -> None:
    result = client.query(f"SELECT 42 AS {identifier(name)}")
    assert result.column_names == (name,) and result.result_rows == [(42,)]


@given(text=st.one_of(st.text(), st.integers().map(str), st.from_regex(r"\s*[0-9]{1,25}\s*", fullmatch=True)))
def test_int_var_is_an_integer_in_range_or_an_error(text: str) -> None:
    try:
        value = str(literals_macros({"top_k": text}).int_var("top_k", 1, 100000)).strip()
    except CompilerError as exc:
        assert "must be a whole number from 1 to 100000" in str(exc)
        return
    assert value.isascii() and value.isdigit() and 1 <= int(value) <= 100000
    assert int(value) == int(text.strip())


# Plain st.text() almost never holds the delimiters dbt reacts to: draw them on purpose.
TEMPLATE_FRAGMENTS = ["{{", "}}", "{%", "%}", "{#", "#}", "{", "}", "%", "#", "-", "'", '"', "\\", "x", " ", "\n"]
VAR_TEXT = st.one_of(st.text(), st.lists(st.sampled_from(TEMPLATE_FRAGMENTS) | st.text(max_size=3)).map("".join))


@given(text=VAR_TEXT)
@example(text="{{ 7 * 6 }}")
@example(text="{% if true %}x{% endif %}")
@example(text="{# hidden #}")
@example(text="a {{ b }} c %} d #}")
@example(text='{{ "\\" }}')
def test_dbt_vars_passed_by_bildsuche_render_to_themselves(text: str) -> None:
    assert get_rendered(literal_var(text), {}) == text
    assert literal_var({"v": [text]}) == {"v": [literal_var(text)]}


FRAGMENTS = [
    "SELECT 1", " ", ";", "'", '"', "`", "\\", "--", "#", "# ", "#!", "/*", "*/", "\n", "x", "''", "``",
    " DROP TABLE canary", " TRUNCATE TABLE canary", "SELECT 'a;b'", " INSERT INTO canary VALUES (2)",
    "$$", "$q$", "x$", "$", "/* /*", "*/ */", "$$'$$", "$q$'$q$", "/* /* */ '", "; DROP TABLE canary;",
]  # fmt: skip


@FIXTURES_OK
@given(parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=10))
def test_one_accepted_statement_is_one_statement(client: Client, parts: list[str]) -> None:
    client.command("CREATE TABLE IF NOT EXISTS canary (a Int32) ENGINE = MergeTree ORDER BY a")
    client.command("TRUNCATE TABLE canary")
    client.command("INSERT INTO canary VALUES (1)")
    text = "SELECT " + "".join(parts)
    try:
        statement = single_statement(text)
    except MultiStatementError:
        return
    with contextlib.suppress(Exception):  # the engine refusing the text is fine; running more of it is not
        client.command(statement)
    assert client.query("SELECT a FROM canary").result_rows == [(1,)], repr(statement)


# --- the Unsplash TSV reader ---------------------------------------------------------------------------------

# Values are trimmed by the reader: only ASCII blanks at the ends, so Python's strip() says what it keeps.
VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), whitelist_characters="\t\n\r\"' "),
    max_size=12,
)
NAME = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


def tsv_field(value: str) -> str:
    if any(c in value for c in '\t\n\r"') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


@FIXTURES_OK
@given(
    names=st.lists(NAME, min_size=2, max_size=4, unique=True),
    data=st.data(),
    parts=st.integers(min_value=1, max_value=3),
    repeat_header=st.booleans(),
    crlf=st.booleans(),
)
def test_tsv_tables_read_back(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], data: Any, parts: int, repeat_header: bool, crlf: bool
) -> None:
    rows = data.draw(st.lists(st.lists(VALUE, min_size=len(names), max_size=len(names)), max_size=12))
    newline = "\r\n" if crlf else "\n"
    header = "\t".join(names) + newline
    lines = ["\t".join(tsv_field(v) for v in row) + newline for row in rows]
    folder = tmp_path_factory.mktemp("tsv")
    size = max(1, -(-len(lines) // parts))
    chunks = [lines[i : i + size] for i in range(0, len(lines), size)] or [[]]
    for i, chunk in enumerate(chunks):
        text = (header if i == 0 or repeat_header else "") + "".join(chunk)
        (folder / f"photos.tsv{i:03d}").write_text(text, encoding="utf-8", newline="")
    table = Release(folder).read("photos")
    assert table is not None and table.column_names == names
    expected = [{n: (v.strip(" \t\r\n") or None) for n, v in zip(names, row, strict=True)} for row in rows]
    assert table.to_pylist() == expected


# --- the parquet validator and the loader --------------------------------------------------------------------

DIM = 4
UNIT = st.floats(width=32, min_value=-1, max_value=1)
DAMAGES = [None, "null_id", "duplicate_id", "short_vector", "long_vector", "nan", "inf", "null_value", "null_vector"]


def damaged(ids: list[str | None], vectors: list[list[float | None] | None], damage: str | None, at: int) -> None:
    """Break row ``at`` one way, in place."""
    vector = vectors[at]
    assert vector is not None
    if damage == "null_id":
        ids[at] = None
    elif damage == "duplicate_id":
        ids[at] = ids[at - 1]
    elif damage == "short_vector":
        vectors[at] = vector[:-1]
    elif damage == "long_vector":
        vectors[at] = [*vector, 0.5]
    elif damage in ("nan", "inf", "null_value"):
        vector[at % DIM] = {"nan": float("nan"), "inf": float("-inf"), "null_value": None}[damage]
    elif damage == "null_vector":
        vectors[at] = None


@FIXTURES_OK
@given(
    ids=st.lists(st.text(max_size=6), min_size=2, max_size=8, unique=True),
    data=st.data(),
    damage=st.sampled_from(DAMAGES),
)
def test_validated_files_are_exactly_the_storable_ones(
    tmp_path_factory: pytest.TempPathFactory, client: Client, ids: list[str | None], data: Any, damage: str | None
) -> None:
    vectors = [data.draw(st.lists(UNIT, min_size=DIM, max_size=DIM)) for _ in ids]
    damaged(ids, vectors, damage, data.draw(st.integers(min_value=1, max_value=len(ids) - 1)))
    folder = tmp_path_factory.mktemp("files")
    table = pa.table(
        {
            "id": pa.array(range(len(ids)), pa.int64()),
            "photo_id": pa.array(ids, pa.string()),
            "photo_image_url": pa.array(["u"] * len(ids), pa.string()),
            "photo_embed": pa.array(vectors, pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, folder / "photos.parquet")
    try:
        count, _ = scan(PHOTOS, folder / "photos.parquet", DIM)
    except InputDataError:
        assert damage is not None
        return
    assert damage is None and count == len(ids)
    load(client, folder, dim=DIM)
    stored = client.query("SELECT photo_id, photo_embed FROM raw.photos ORDER BY id").result_rows
    assert [pid for pid, _ in stored] == ids
    np.testing.assert_array_equal(np.array([v for _, v in stored], np.float32), np.array(vectors, np.float32))
