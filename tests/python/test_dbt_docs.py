"""dbt docs on the embedded store: the catalog holds every relation with its columns
(parameterized views included), and the YAML describes every model, seed, source,
exposure and column, with exactly the columns the relations have."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dbt.adapters.chdb.catalog import projection_columns, split_column

from bildsuche.dbt import environment, run_dbt
from datasets_helpers import built_store, write_synthetic

DESCRIBED = ("model", "seed")


@dataclass
class Docs:
    manifest: dict[str, Any]
    catalog: dict[str, Any]

    def nodes(self, *kinds: str) -> dict[str, dict[str, Any]]:
        return {
            key: node
            for key, node in self.manifest["nodes"].items()
            if node["resource_type"] in kinds and node["config"].get("materialized") != "ephemeral"
        }


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Docs:
    root = tmp_path_factory.mktemp("docs")
    store = built_store(root, write_synthetic(root / "dataset", n=20), {"target_photo_id": "p0003", "top_k": 5})
    with environment({"DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs")}):
        run_dbt(["docs", "generate"], db_path=store, quiet=True)
    return Docs(
        manifest=json.loads((root / "target" / "manifest.json").read_text()),
        catalog=json.loads((root / "target" / "catalog.json").read_text()),
    )


def catalog_columns(entry: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["type"] for c in sorted(entry["columns"].values(), key=lambda c: c["index"])}


@pytest.mark.slow
def test_catalog_holds_the_marts_with_their_columns(docs: Docs) -> None:
    nodes = docs.catalog["nodes"]
    assert list(catalog_columns(nodes["model.bildsuche.photos"])) == [
        "id", "photo_id", "photo_image_url", "photo_embed", "embed_model", "content_hash", "generation",
    ]  # fmt: skip
    assert catalog_columns(nodes["model.bildsuche.photos"])["photo_embed"] == "Array(Float32)"
    # A parameterized view, which system.columns does not list.
    assert catalog_columns(nodes["model.bildsuche.neighbours"]) == {
        "target_photo_id": "String", "photo_id": "String", "photo_image_url": "String", "picture_url": "String",
        "dist": "Float64", "rank": "UInt32",
    }  # fmt: skip
    assert nodes["model.bildsuche.neighbours"]["metadata"]["type"] == "view"
    for mart in ("top_k_neighbours", "conversions_per_candidate", "keyword_breakdown", "search_results",
                 "keyword_suggestions", "underexposed_lookalikes", "keyword_search_relevance"):  # fmt: skip
        assert catalog_columns(nodes[f"model.bildsuche.{mart}"]), mart
    assert list(catalog_columns(nodes["seed.bildsuche.saved_searches"])) == ["name", "text"]
    assert list(catalog_columns(nodes["seed.bildsuche.text_model_fits"])) == [
        "text_model", "image_model", "languages", "note",
    ]  # fmt: skip
    assert {key.split(".")[-1] for key in docs.catalog["sources"]} == {"photos", "conversions", "search_queries"}
    optional = {key.split(".")[-1] for key, s in docs.manifest["sources"].items() if s["meta"].get("optional")}
    # Tables a data set may lack, and the keyword cache `bildsuche keywords` makes: not in this store.
    assert optional == {"keywords", "colors", "keyword_embeddings"}


@pytest.mark.slow
def test_every_model_and_seed_documents_exactly_its_columns(docs: Docs) -> None:
    problems = []
    for key, node in docs.nodes(*DESCRIBED).items():
        if key not in docs.catalog["nodes"]:
            problems.append(f"{key}: not in the catalog")
            continue
        actual = set(catalog_columns(docs.catalog["nodes"][key]))
        documented = set(node["columns"])
        if actual - documented:
            problems.append(f"{key}: columns missing from the YAML: {sorted(actual - documented)}")
        if documented - actual:
            problems.append(f"{key}: YAML columns the relation does not have: {sorted(documented - actual)}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_every_source_column_in_the_yaml_exists(docs: Docs) -> None:
    # Sources may hold more (the photo metadata columns a data set brings); the YAML names the fixed ones.
    for key, source in docs.manifest["sources"].items():
        if source["meta"].get("optional") and key not in docs.catalog["sources"]:
            continue
        actual = set(catalog_columns(docs.catalog["sources"][key]))
        assert set(source["columns"]) <= actual, key


@pytest.mark.slow
def test_every_model_seed_source_exposure_and_column_is_described(docs: Docs) -> None:
    entries = {**docs.nodes(*DESCRIBED), **docs.manifest["sources"], **docs.manifest["exposures"]}
    missing = [key for key, entry in entries.items() if not entry["description"].strip()]
    for key, entry in entries.items():
        missing += [
            f"{key}.{name}" for name, column in entry.get("columns", {}).items() if not column["description"].strip()
        ]
    assert not missing, f"without a description: {missing}"
    assert {"model", "seed", "source", "exposure"} <= {key.split(".")[0] for key in entries}


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower().replace(" ", "-")
            anchors.add("".join(c for c in title if c.isalnum() or c in "-_"))
    return anchors


@pytest.mark.slow
def test_exposures_are_dashboards_on_existing_marts(docs: Docs) -> None:
    exposures = docs.manifest["exposures"]
    anchors = heading_anchors((Path(__file__).resolve().parents[2] / "docs" / "bi.md").read_text())
    assert {e["name"] for e in exposures.values()} >= {"similar_photos_explorer", "downloads_and_keywords"}
    for exposure in exposures.values():
        assert exposure["type"] == "dashboard"
        assert exposure["owner"]["name"]
        assert exposure["url"].startswith("docs/bi.md#")
        assert exposure["url"].split("#")[1] in anchors, exposure["url"]
        depends = exposure["depends_on"]["nodes"]
        assert depends and all(node in docs.manifest["nodes"] for node in depends)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("photo_id String", ("photo_id", "String")),
        ("odd name String", ("odd name", "String")),
        ("x y Array(UInt8)", ("x y", "Array(UInt8)")),
        ("ts DateTime('UTC')", ("ts", "DateTime('UTC')")),
        ("e Enum8('a)' = 1, 'b(' = 2)", ("e", "Enum8('a)' = 1, 'b(' = 2)")),
        ("m Map(String, Tuple(a UInt8, b Nullable(String)))", ("m", "Map(String, Tuple(a UInt8, b Nullable(String)))")),
    ],
)
def test_projection_columns_split_into_name_and_type(entry: str, expected: tuple[str, str]) -> None:
    assert split_column(entry) == expected


def test_projection_columns_are_read_from_the_query_tree() -> None:
    tree = [
        "QUERY id: 0",
        "  PROJECTION COLUMNS",
        "    target_photo_id String",
        "    dist Float64",
        "  PROJECTION",
        "    LIST id: 1, nodes: 2",
    ]
    assert projection_columns(tree) == [("target_photo_id", "String"), ("dist", "Float64")]
    assert projection_columns(["QUERY id: 0"]) == []
    with pytest.raises(ValueError, match="not a projection column"):
        split_column("String")
