"""Records to points: ids, payload, templates and every bad field."""

from __future__ import annotations

import datetime
import random
import uuid
from typing import Any

import pytest
from qdrant_client import models

from qdrant_beam.transforms import InvalidRecord, load_spec
from qdrant_beam.transforms.mapping import RecordMapper, point_id
from qdrant_beam.transforms.spec import DEFAULT_ID_NAMESPACE

NS = DEFAULT_ID_NAMESPACE


def mapper(**overrides: Any) -> RecordMapper:
    spec: dict[str, Any] = {
        "collection": "docs",
        "id": "{id}",
        "vectors": {
            "dense": {"text": "{title}. {body}", "model": "sentence-transformers/all-MiniLM-L6-v2"},
            "bm25": {"text": "{body}", "model": "qdrant/bm25"},
        },
    }
    spec.update(overrides)
    return RecordMapper(load_spec(spec))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (7, 7),
        ("7", 7),
        ("0", 0),
        (2**64 - 1, 2**64 - 1),
        ("1b4e28ba-2fa1-11d2-883f-0016d3cca427", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        ("1B4E28BA2FA111D2883F0016D3CCA427", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        ("007", str(uuid.uuid5(NS, "docs/007"))),
        ("doc-1", str(uuid.uuid5(NS, "docs/doc-1"))),
        (-3, str(uuid.uuid5(NS, "docs/-3"))),
        (2**64, str(uuid.uuid5(NS, f"docs/{2**64}"))),
    ],
)
def test_point_ids(key: Any, expected: Any) -> None:
    assert point_id(key, collection="docs", namespace=NS) == expected


def test_derived_ids_are_exactly_uuid5_for_any_key_namespace_and_collection() -> None:
    """Ids are stored: the fast derivation must give uuid5's text, bit for bit."""
    rng = random.Random(5)
    for _ in range(300):
        namespace = uuid.UUID(int=rng.getrandbits(128))
        collection = rng.choice(["docs", "Sammlung_ü", "c" * 40])
        key = "".join(rng.choice("az-_/:ü✓😀09 ") for _ in range(rng.randint(1, 30)))
        if key.strip() and not key.isdecimal():
            expected = str(uuid.uuid5(namespace, f"{collection}/{key}"))
            assert point_id(key, collection=collection, namespace=namespace) == expected


def test_ids_are_deterministic_and_scoped_by_collection() -> None:
    a = point_id("k", collection="a", namespace=NS)
    assert a == point_id("k", collection="a", namespace=NS)
    assert a != point_id("k", collection="b", namespace=NS)


@pytest.mark.parametrize("key", [True, 1.5, None, "   ", b"\xff"])
def test_bad_ids(key: Any) -> None:
    with pytest.raises(InvalidRecord):
        point_id(key, collection="docs", namespace=NS)


def test_record_becomes_point_with_inference_objects() -> None:
    point = mapper().to_point({"id": "a1", "title": "Hello", "body": "World"})
    assert point.id == str(uuid.uuid5(NS, "docs/a1"))
    assert point.vector["dense"] == models.Document(
        text="Hello. World", model="sentence-transformers/all-MiniLM-L6-v2"
    )
    assert point.vector["bm25"] == models.Document(text="World", model="qdrant/bm25")
    assert point.payload == {"id": "a1", "title": "Hello", "body": "World"}


def test_templates_read_nested_fields_and_keep_options() -> None:
    m = mapper(
        id="{meta.source}:{meta.n}",
        vectors={
            "small": {
                "text": "{meta.title}",
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "options": {"mrl": 64},
            }
        },
    )
    point = m.to_point({"meta": {"source": "web", "n": 3, "title": "T"}})
    assert point.id == str(uuid.uuid5(NS, "docs/web:3"))
    assert point.vector["small"].options == {"mrl": 64}


def test_payload_include_exclude_and_conversion() -> None:
    m = mapper(payload={"include": ["id", "title", "when", "tags"], "exclude": ["title"]})
    record = {
        "id": 1,
        "title": "t",
        "body": "b",
        "when": datetime.date(2024, 5, 1),
        "tags": ("a", "b"),
    }
    assert m.to_point(record).payload == {"id": 1, "when": "2024-05-01", "tags": ["a", "b"]}


def test_image_field_bytes_pass_through_and_stay_out_of_payload() -> None:
    m = mapper(vectors={"img": {"image": "{img}", "model": "Qdrant/clip-ViT-B-32-vision"}})
    point = m.to_point({"id": 1, "img": b"\x89PNG..."})
    assert point.vector["img"].image == b"\x89PNG..."
    assert point.payload == {"id": 1}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": 1, "body": "b"}, "field 'title' is missing from the record"),
        ({"id": 1, "title": None, "body": "b"}, "field 'title' is null"),
        ({"id": 1, "title": 5, "body": "b"}, "field 'title' must be a string, got int 5"),
        ({"id": 1, "title": ["x"], "body": "b"}, "field 'title' must be a string, got list"),
        ({"id": 1, "title": "t", "body": ""}, "vector 'bm25': text from '{body}' is empty"),
        ({"id": 1, "title": "t", "body": " \n\t "}, "vector 'bm25': text from '{body}' is empty"),
        (
            {"id": 1, "title": b"\xff\xfe", "body": "b"},
            "field 'title' holds bytes that are not valid UTF-8",
        ),
        ({"title": "t", "body": "b"}, "field 'id' is missing"),
        ({"id": 1, "title": "t", "body": "b", "x": float("nan")}, "non-finite float"),
        ({"id": 1, "title": "t", "body": "b", "x": object()}, "add it to payload.exclude"),
        ("not a dict", "a record must be a mapping, got str"),
    ],
)
def test_bad_records_name_the_field(record: Any, message: str) -> None:
    with pytest.raises(InvalidRecord) as err:
        mapper().to_point(record)
    assert message in str(err.value)


def test_utf8_bytes_are_accepted_as_text() -> None:
    point = mapper().to_point({"id": 1, "title": "Grüße".encode(), "body": "b"})
    assert point.vector["dense"].text == "Grüße. b"


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "is null"), (12, "got int"), ("", "is empty"), (b"", "image bytes are empty")],
)
def test_bad_image_fields(value: Any, message: str) -> None:
    m = mapper(vectors={"img": {"image": "{img}", "model": "Qdrant/clip-ViT-B-32-vision"}})
    with pytest.raises(InvalidRecord, match=message):
        m.to_point({"id": 1, "img": value})


def test_construct_matches_model_construct() -> None:
    """The fast path sets the same slots as ``model_construct``: equal, same repr, same
    fields set, same dump, and it pickles; with a field left out it falls back."""
    import pickle

    from qdrant_beam.transforms.construct import construct

    values = {"id": 7, "vector": {"dense": [0.5, 0.25]}, "payload": {"a": 1}}
    fast = construct(models.PointStruct, **values)
    slow = models.PointStruct.model_construct(**values)
    assert fast == slow and repr(fast) == repr(slow)
    assert fast.model_fields_set == slow.model_fields_set == {"id", "vector", "payload"}
    assert fast.model_dump() == slow.model_dump()
    assert pickle.loads(pickle.dumps(fast)) == slow
    doc = construct(models.Document, text="t", model="m", options=None)
    assert doc == models.Document(text="t", model="m") and doc.model_extra is None
    partial = construct(models.PointStruct, id=1, vector=[1.0])  # payload left to default
    assert partial == models.PointStruct.model_construct(id=1, vector=[1.0])
    assert partial.model_fields_set == {"id", "vector"}
