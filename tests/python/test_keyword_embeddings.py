"""`python_embed keywords`: the most searched keywords embedded once per model by the CLIP text
tower into raw.keyword_embeddings, for the keyword_search_relevance mart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bildsuche.cli import module_main
from bildsuche.store import client_for
from datasets_helpers import KEYWORDS, write_synthetic
from python_embed.demo_model import DEMO_MODEL_NAME
from python_embed.embedder import ClipEmbedder
from seeds_loader import load

pytestmark = pytest.mark.slow


def main(argv: list[str]) -> int:
    return module_main("python_embed", ("build", "query", "keywords"), argv)


def cached(store: Path) -> dict[tuple[str, str], list[float]]:
    with client_for("embedded", path=store) as client:
        rows = client.query("SELECT model, keyword, embedding FROM raw.keyword_embeddings FINAL").result_rows
    return {(str(m), str(k)): list(e) for m, k, e in rows}


def test_keywords_are_embedded_once_per_model(
    tmp_path: Path, demo_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_synthetic(tmp_path / "ds", n=40, model=DEMO_MODEL_NAME)
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
        counts = dict(client.query("SELECT lower(trim(keyword)), count() FROM raw.conversions GROUP BY 1").result_rows)
    frequent = sorted(kw for kw, n in counts.items() if n >= 30)
    assert 0 < len(frequent) < len({k.strip().lower() for k in KEYWORDS})  # the threshold leaves some out
    argv = ["keywords", "--model", str(demo_model_dir), "--min-searches", "30"]
    assert main(argv) == 0
    assert f"{len(frequent)} keywords embedded now, 0 cached already" in capsys.readouterr().out
    first = cached(store)
    assert sorted(first) == [(DEMO_MODEL_NAME, kw) for kw in frequent]  # spelled as stg_conversions spells them
    vectors = ClipEmbedder(str(demo_model_dir)).embed_texts(frequent)
    for kw, v in zip(frequent, vectors, strict=True):
        np.testing.assert_allclose(first[(DEMO_MODEL_NAME, kw)], v, atol=1e-5)
    # Again: nothing to embed.  A lower threshold embeds only the keywords it adds.
    assert main(argv) == 0
    assert f"0 keywords embedded now, {len(frequent)} cached already" in capsys.readouterr().out
    assert main(["keywords", "--model", str(demo_model_dir), "--min-searches", "1", "--limit", "3"]) == 0
    assert "keywords embedded now" in capsys.readouterr().out
    assert cached(store).keys() >= first.keys()
    # Another model's cache is no cache of this one.
    with client_for("embedded", path=store) as client:
        client.command(
            "INSERT INTO raw.keyword_embeddings SELECT 'other-clip', keyword, embedding, embedded_at "
            "FROM raw.keyword_embeddings"
        )
        client.command(
            "ALTER TABLE raw.keyword_embeddings DELETE WHERE model != 'other-clip' SETTINGS mutations_sync = 2"
        )
    assert main(argv) == 0
    assert f"{len(frequent)} keywords embedded now, 0 cached already" in capsys.readouterr().out


def test_keywords_of_photos_of_another_model_are_refused(
    tmp_path: Path, demo_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_synthetic(tmp_path / "ds", n=20)
    with client_for("embedded", path=tmp_path / "store") as client:
        load(client, data.directory)
    assert main(["keywords", "--model", str(demo_model_dir)]) == 1
    assert "embedded by synthetic-clip, not by bildsuche-demo-clip" in capsys.readouterr().err
    assert main(["keywords", "--model", str(demo_model_dir), "--min-searches", "0"]) == 2
