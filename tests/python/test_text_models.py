"""Text searches in other languages: `query --text-model` with a text model trained into the
photos' CLIP space, tested with the tiny demo encoder of the real model's architecture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bildsuche.cli import module_main
from bildsuche.dbt import run_dbt
from bildsuche.errors import EmbeddingModelMismatchError
from bildsuche.store import client_for
from datasets_helpers import write_synthetic
from python_embed.demo_model import DEMO_MODEL_NAME
from python_embed.demo_text_model import DEMO_TEXT_MODEL_NAME, create_demo_text_model
from python_embed.text_models import SentenceTransformerEncoder, check_fit, read_fits
from seeds_loader import load

MULTILINGUAL = "sentence-transformers/clip-ViT-B-32-multilingual-v1"
CLIP_B32 = "openai/clip-vit-base-patch32"
TEXTS = ["Sonnenuntergang am Meer", "Straße im Schnee", "закат над морем", "a sunset over the sea"]


@pytest.fixture(scope="module")
def text_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_demo_text_model(tmp_path_factory.mktemp("text-model") / "multilingual")


def main(argv: list[str]) -> int:
    return module_main("python_embed", ("build", "query", "keywords"), argv)


def test_the_demo_encoder_has_the_multilingual_models_architecture(text_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    model = SentenceTransformer(str(text_model_dir), device="cpu")
    transformer, pooling, dense = list(model)
    assert isinstance(transformer, Transformer) and type(transformer.auto_model).__name__ == "DistilBertModel"
    assert isinstance(pooling, Pooling) and pooling.get_config_dict()["pooling_mode"] == "mean"
    assert isinstance(dense, Dense)
    config = dense.get_config_dict()
    assert (config["out_features"], config["bias"]) == (512, False)
    assert config["activation_function"] == "torch.nn.modules.linear.Identity"


def test_embeddings_equal_a_forward_pass_by_hand(text_model_dir: Path) -> None:
    import torch
    from transformers import AutoTokenizer, DistilBertModel

    encoder = SentenceTransformerEncoder(str(text_model_dir))
    assert encoder.name == DEMO_TEXT_MODEL_NAME
    got = encoder.embed_texts(TEXTS)
    # DistilBERT, the mean of the token states under the attention mask, the projection, L2 norm.
    tokenizer = AutoTokenizer.from_pretrained(text_model_dir)
    bert = DistilBertModel.from_pretrained(text_model_dir).eval()
    weight = encoder.model[2].linear.weight.detach()
    tokens = tokenizer(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    assert "[UNK]" not in tokenizer.convert_ids_to_tokens(tokens["input_ids"][0])
    with torch.inference_mode():
        states = bert(**tokens).last_hidden_state
    mask = tokens["attention_mask"].unsqueeze(-1).float()
    pooled = (states * mask).sum(1) / mask.sum(1)
    projected = (pooled @ weight.T).numpy()
    expected = projected / np.linalg.norm(projected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.shape == (4, 512)
    assert (got @ got.T < 1 - 1e-4)[~np.eye(4, dtype=bool)].all()  # four texts, four directions


def test_the_fits_table_pairs_the_multilingual_model_with_clip_b32() -> None:
    fits = read_fits()
    assert {(f.text_model, f.image_model) for f in fits} >= {
        (MULTILINGUAL, CLIP_B32),
        (DEMO_TEXT_MODEL_NAME, DEMO_MODEL_NAME),
    }
    check_fit(MULTILINGUAL, CLIP_B32)
    with pytest.raises(EmbeddingModelMismatchError, match=f"text model {MULTILINGUAL} embeds into the space of"):
        check_fit(MULTILINGUAL, "openai/clip-vit-large-patch14")


def photos_of(tmp_path: Path, model: str) -> Path:
    store = tmp_path / "store"  # $BILDSUCHE_DB_PATH of the test
    data = write_synthetic(tmp_path / "ds", n=30, model=model)
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
    return store


def saved(store: Path) -> list[tuple[object, ...]]:
    with client_for("embedded", path=store) as client:
        return list(
            client.query(
                "SELECT name, kind, query, model, text_model, embedding FROM raw.search_queries FINAL ORDER BY name"
            ).result_rows
        )


@pytest.mark.slow
def test_a_german_search_is_saved_with_its_text_model_and_answered(
    tmp_path: Path, demo_model_dir: Path, text_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = photos_of(tmp_path, DEMO_MODEL_NAME)
    argv = ["query", "--name", "sonne", "--text", TEXTS[0], "--model", str(demo_model_dir)]
    assert main([*argv, "--text-model", str(text_model_dir)]) == 0
    out = capsys.readouterr().out
    assert f"text model {DEMO_TEXT_MODEL_NAME}" in out and "randomly initialised demo model" in out
    [row] = saved(store)
    assert row[:5] == ("sonne", "text", TEXTS[0], DEMO_MODEL_NAME, DEMO_TEXT_MODEL_NAME)
    expected = SentenceTransformerEncoder(str(text_model_dir)).embed_texts([TEXTS[0]])[0]
    np.testing.assert_allclose(np.array(row[5]), expected, atol=1e-6)
    # The CLIP text tower, as before, records the CLIP model as the text model.
    assert main(["query", "--name", "sun", "--text", TEXTS[3], "--model", str(demo_model_dir)]) == 0
    assert [r[4] for r in saved(store)] == [DEMO_TEXT_MODEL_NAME, DEMO_MODEL_NAME]
    run_dbt(["build"], db_path=store, dbt_vars={"top_k": 4}, quiet=True)  # saved_searches_text_model_fits passes
    with client_for("embedded", path=store) as client:
        rows = client.query("SELECT query_name, count() FROM analytics.search_results GROUP BY 1 ORDER BY 1")
        assert rows.result_rows == [("sonne", 4), ("sun", 4)]
        assert client.query("SELECT text_model FROM analytics.stg_search_queries WHERE name = 'sonne'").result_rows == [
            (DEMO_TEXT_MODEL_NAME,)
        ]


@pytest.mark.slow
def test_searches_from_the_csv_take_the_text_model(tmp_path: Path, demo_model_dir: Path, text_model_dir: Path) -> None:
    store = photos_of(tmp_path, DEMO_MODEL_NAME)
    csv_file = tmp_path / "searches.csv"
    csv_file.write_text("name,text\nmeer,Das Meer bei Nacht\nwald,Wald im Nebel\n", encoding="utf-8")
    argv = ["query", "--from-csv", str(csv_file), "--model", str(demo_model_dir), "--text-model", str(text_model_dir)]
    assert main(argv) == 0
    assert [(r[0], r[4]) for r in saved(store)] == [("meer", DEMO_TEXT_MODEL_NAME), ("wald", DEMO_TEXT_MODEL_NAME)]


def test_a_text_model_for_another_image_model_is_refused_by_name_before_loading(
    tmp_path: Path, demo_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = photos_of(tmp_path, DEMO_MODEL_NAME)
    # Not in the Hugging Face cache here: refused before any attempt to load it.
    argv = ["query", "--name", "x", "--text", "Strand", "--model", str(demo_model_dir), "--text-model", MULTILINGUAL]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"python_embed: error: text model {MULTILINGUAL} embeds into the space of {CLIP_B32}, "
        f"sentence-transformers/clip-ViT-B-32, not of {DEMO_MODEL_NAME}"
    )
    assert "cannot load" not in err and "\n" not in err
    assert saved(store) == []


def test_the_demo_text_model_is_refused_for_photos_of_clip_b32(
    tmp_path: Path, text_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = photos_of(tmp_path, CLIP_B32)
    # openai/clip-vit-base-patch32 is not here either: the check needs its name only.
    argv = ["query", "--name", "x", "--text", "Strand", "--model", CLIP_B32, "--text-model", str(text_model_dir)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"text model {DEMO_TEXT_MODEL_NAME} embeds into the space of {DEMO_MODEL_NAME}, not of {CLIP_B32}" in err
    # A text model that no row of the table names.
    argv = ["query", "--name", "x", "--text", "Strand", "--model", CLIP_B32, "--text-model", str(tmp_path)]
    assert main(argv) == 1
    assert f"text model {tmp_path} is not known to fit {CLIP_B32}" in capsys.readouterr().err
    assert main(["query", "--name", "x", "--image", "a.jpg", "--text-model", str(text_model_dir)]) == 2
    assert saved(store) == []
