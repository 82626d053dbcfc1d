"""Saved searches from the dbt seed CSV: `python_embed query --from-csv` -> raw.search_queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from bildsuche import config
from bildsuche.cli import module_main
from bildsuche.dbt import run_dbt
from bildsuche.errors import InputDataError
from bildsuche.store import client_for
from datasets_helpers import write_synthetic
from python_embed.demo_model import DEMO_MODEL_NAME
from python_embed.saved_searches import SearchText, default_csv, read_saved_searches
from seeds_loader import load


def main(argv: list[str]) -> int:
    """`python -m python_embed ARGS`, in-process."""
    return module_main("python_embed", ("build", "query"), argv)


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "searches.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_project_seed_is_the_default_file() -> None:
    path = default_csv()
    assert path == config.project_dir() / "seeds" / "saved_searches.csv"
    searches = read_saved_searches(path)
    assert SearchText("dog-on-beach", "a dog on a beach") in searches
    assert {"city-at-night", "mountain-lake"} <= {s.name for s in searches}


def test_rows_are_read_trimmed_with_extra_columns_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path, '\ufeffname,text,note\n beach ,"  a dog, on a beach ",x\n\nlake,mountain lake,\n')
    assert read_saved_searches(path) == [SearchText("beach", "a dog, on a beach"), SearchText("lake", "mountain lake")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name,query\nbeach,a beach\n", r"missing column\(s\) text; .* \(found name,query\)"),
        ("", r"missing column\(s\) name, text"),
        ("name,text\n", "no saved searches"),
        ("name,text\n,a beach\n", "line 2: empty name"),
        ("name,text\nbeach,  \n", "line 2: empty text"),
        ("name,text\nbeach\n", "line 2: empty text"),
        ("name,text\nbeach,a,b\n", "line 2: more fields than the header's 2"),
        ("name,text\nbeach,a beach\nlake,a lake\nbeach,sand\n", r"line 4: name 'beach' again \(first on line 2\)"),
        ("name,text\n" + "x" * 201 + ",a\n", "not 1 to 200 printable characters"),
        ("name,text\n,a\nb,\n", "line 2: empty name; line 3: empty text; nothing saved"),
    ],
)
def test_bad_files_are_refused_with_every_problem_named(tmp_path: Path, content: str, expected: str) -> None:
    with pytest.raises(InputDataError, match=expected):
        read_saved_searches(write_csv(tmp_path, content))


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="no such file"):
        read_saved_searches(tmp_path / "missing.csv")
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,text\nsee,Käse\n".encode("latin-1"))
    with pytest.raises(InputDataError, match="not a readable UTF-8 CSV"):
        read_saved_searches(path)


def saved(store: Path) -> dict[str, tuple[str, str, str]]:
    with client_for("embedded", path=store) as client:
        rows = client.query("SELECT name, kind, query, model FROM raw.search_queries FINAL").result_rows
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}


@pytest.mark.slow
def test_every_row_becomes_a_saved_search_answered_by_dbt(tmp_path: Path, demo_model_dir: Path) -> None:
    store = tmp_path / "store"  # $BILDSUCHE_DB_PATH of this test
    data = write_synthetic(tmp_path / "ds", n=40, model=DEMO_MODEL_NAME)
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
    model = ["--model", str(demo_model_dir)]
    assert main(["query", "--name", "beach", "--text", "to be replaced", *model]) == 0
    path = write_csv(tmp_path, "name,text\nbeach,a dog on a beach\nskyline,city skyline at night\n")
    assert main(["query", "--from-csv", str(path), *model]) == 0
    assert saved(store) == {
        "beach": ("text", "a dog on a beach", DEMO_MODEL_NAME),
        "skyline": ("text", "city skyline at night", DEMO_MODEL_NAME),
    }
    run_dbt(["build"], db_path=store, dbt_vars={"top_k": 4}, quiet=True)
    with client_for("embedded", path=store) as client:
        results = client.query("SELECT query_name, count() FROM analytics.search_results GROUP BY 1").result_rows
        seeded = client.query("SELECT name FROM analytics.saved_searches ORDER BY name").result_rows
    assert dict(results) == {"beach": 4, "skyline": 4}
    assert ("dog-on-beach",) in seeded  # `dbt build` seeds the project's CSV too
    # Without a path, the project's seed file is read.
    assert main(["query", "--from-csv", *model]) == 0
    assert {s.name for s in read_saved_searches(default_csv())} <= set(saved(store))


def test_a_bad_file_or_mixed_arguments_write_nothing(
    tmp_path: Path, demo_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    data = write_synthetic(tmp_path / "ds", n=20, model=DEMO_MODEL_NAME)
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
    model = ["--model", str(demo_model_dir)]
    bad = write_csv(tmp_path, "name,text\nbeach,a beach\nbeach,sand\n")
    assert main(["query", "--from-csv", str(bad), *model]) == 1
    assert "name 'beach' again" in capsys.readouterr().err
    assert main(["query", "--from-csv", str(bad), "--name", "x", *model]) == 2
    assert "leave out --name" in capsys.readouterr().err
    assert main(["query", "--text", "a beach", *model]) == 2
    assert "need --name" in capsys.readouterr().err
    assert saved(store) == {}
