"""The spec validates fully before a pipeline starts, and each error names the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from qdrant_beam.transforms import PointsSpec, SpecError, load_spec
from qdrant_beam.transforms.backends.registry import VectorKind

ROOT = Path(__file__).resolve().parents[1]


def _spec(**vectors: Any) -> dict[str, Any]:
    return {"collection": "docs", "id": "{id}", "vectors": vectors}


def test_loads_yaml_and_json_alike(tmp_path: Path) -> None:
    data = _spec(
        dense={"text": "{title}. {body}", "model": "sentence-transformers/all-MiniLM-L6-v2"},
        small={
            "text": "{title}. {body}",
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "options": {"mrl": 64},
        },
        bm25={"text": "{body}", "model": "qdrant/bm25"},
    )
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "s.json").write_text(json.dumps(data))
    from_yaml = load_spec(tmp_path / "s.yaml")
    from_json = load_spec(tmp_path / "s.json")
    assert from_yaml == from_json
    assert from_yaml.vector_size("dense") == 384
    assert from_yaml.vector_size("small") == 64
    assert from_yaml.vector_size("bm25") is None
    assert from_yaml.model_info("bm25").vector_kind is VectorKind.SPARSE
    assert from_yaml.sparse_modifier("bm25") == "idf"


@pytest.mark.parametrize(
    ("vectors", "expected"),
    [
        (
            {"v": {"text": "{a}", "model": "no/such-model"}},
            "vectors.v: unknown model 'no/such-model'",
        ),
        (
            {"v": {"text": "{a}", "image": "{b}", "model": "qdrant/bm25"}},
            "vectors.v: give exactly one of `text` or `image`",
        ),
        ({"v": {"model": "qdrant/bm25"}}, "vectors.v: give exactly one of `text` or `image`"),
        ({"v": {"text": "no fields", "model": "qdrant/bm25"}}, "vectors.v.text: template"),
        ({"v": {"text": "{a!r}", "model": "qdrant/bm25"}}, "may not carry a format spec"),
        (
            {"v": {"text": "{a", "model": "qdrant/bm25"}},
            "vectors.v.text: template '{a' is malformed",
        ),
        (
            {"v": {"text": "{a}", "model": "qdrant/bm25", "options": {"mrl": 8}}},
            "option mrl applies to dense vectors only",
        ),
        (
            {
                "v": {
                    "text": "{a}",
                    "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "options": {"mrl": 512},
                }
            },
            "option mrl=512 exceeds the size 384",
        ),
        (
            {
                "v": {
                    "text": "{a}",
                    "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "options": {"mrl": 0},
                }
            },
            "option mrl must be a positive integer",
        ),
        (
            {
                "v": {
                    "text": "{a}",
                    "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "options": {"pooling": 1},
                }
            },
            "option 'pooling' is not understood",
        ),
        (
            {"v": {"image": "{a}", "model": "sentence-transformers/all-MiniLM-L6-v2"}},
            "embeds text but the vector gives it image",
        ),
        (
            {"v": {"text": "{a}", "model": "Qdrant/clip-ViT-B-32-vision"}},
            "embeds image but the vector gives it text",
        ),
        (
            {"v": {"text": "{a}", "model": "openai/mystery-model"}},
            "size of remote model 'openai/mystery-model' is not known",
        ),
        (
            {
                "v": {
                    "text": "{a}",
                    "model": "openai/text-embedding-3-small",
                    "options": {"openai-api-key": "sk-never-in-a-spec"},
                }
            },
            "an API key does not belong in a spec",
        ),
        (
            {"v": {"image": "{a}", "model": "openai/text-embedding-3-small"}},
            "embeds text only",
        ),
        (
            {"v": {"text": "{a}", "model": "cohere/embed-v4.0", "options": {"task": "x"}}},
            "option 'task' is not understood by cohere",
        ),
        (
            {"v": {"text": "{a}", "model": "qdrant/bm25", "distance": "Hamming"}},
            "vectors.v.distance",
        ),
        (
            {
                "v": {
                    "text": "{a}",
                    "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "modifier": "idf",
                }
            },
            "vectors.v.modifier: only sparse vectors take a modifier",
        ),
        ({"v": {"text": "{a}", "model": "qdrant/bm25", "typo": 1}}, "vectors.v.typo"),
    ],
)
def test_errors_name_the_field_and_the_problem(vectors: dict[str, Any], expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load_spec(_spec(**vectors))
    assert expected in str(err.value)


def test_missing_top_level_fields_are_named() -> None:
    with pytest.raises(SpecError) as err:
        load_spec({"vectors": {}})
    message = str(err.value)
    assert "collection: Field required" in message
    assert "id: Field required" in message
    assert "vectors: Dictionary should have at least 1 item" in message


def test_custom_model_needs_folder_kind_and_dim(tmp_path: Path) -> None:
    spec = _spec(v={"text": "{a}", "model": "acme/encoder"})
    spec["models"] = {"acme/encoder": {"path": str(tmp_path), "kind": "dense"}}
    with pytest.raises(SpecError, match="custom model 'acme/encoder' needs `dim`"):
        load_spec(spec)
    spec["models"]["acme/encoder"]["dim"] = 32
    assert load_spec(spec).vector_size("v") == 32


def test_model_names_compare_case_insensitively() -> None:
    spec = load_spec(_spec(v={"text": "{a}", "model": "QDRANT/BM25"}))
    assert spec.model_info("v").name == "Qdrant/bm25"


def test_unreadable_or_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(tmp_path / "list.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError, match="not valid json"):
        load_spec(tmp_path / "bad.json")


def _meaning(schema: Any) -> Any:
    """A JSON Schema without what means nothing: ``additionalProperties: true`` is the default
    (pydantic 2.6, the oldest we support, leaves it out; later versions write it)."""
    if isinstance(schema, dict):
        return {
            k: _meaning(v)
            for k, v in schema.items()
            if not (k == "additionalProperties" and v is True)
        }
    if isinstance(schema, list):
        return [_meaning(v) for v in schema]
    return schema


def test_published_json_schema_is_current() -> None:
    published = json.loads((ROOT / "examples" / "spec.schema.json").read_text())
    assert _meaning(published) == _meaning(PointsSpec.json_schema()), "run `make schema`"
