"""The incremental reindex's content hash: what changes it and what does not."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from qdrant_beam.pipelines.content_hash import content_hash, spec_fingerprint
from qdrant_beam.transforms import load_spec
from qdrant_beam.transforms.mapping import RecordMapper


def make_spec(**overrides: Any) -> Any:
    spec: dict[str, Any] = {
        "collection": "docs",
        "id": "{id}",
        "payload": {"exclude": ["body", "raw"]},
        "vectors": {
            "dense": {"text": "{title}. {body}", "model": "sentence-transformers/all-MiniLM-L6-v2"},
            "bm25": {"text": "{body}", "model": "qdrant/bm25"},
        },
    }
    spec.update(overrides)
    return load_spec(spec)


def digest(record: dict[str, Any], spec: Any = None) -> str:
    spec = spec or make_spec()
    mapper = RecordMapper(spec)
    return content_hash(mapper.shaping_part(record), spec_fingerprint(spec))


RECORD = {"id": 1, "title": "Kiln", "body": "an oven for firing pottery", "raw": b"\x00\x01"}


def test_the_hash_is_stable_and_ignores_key_order() -> None:
    assert digest(RECORD) == digest(dict(reversed(list(RECORD.items()))))
    assert len(digest(RECORD)) == 32


def test_fields_the_point_is_made_from_change_the_hash() -> None:
    assert digest({**RECORD, "body": "a furnace"}) != digest(RECORD)  # templated, not payload
    assert digest({**RECORD, "title": "Oven"}) != digest(RECORD)  # templated and payload
    assert digest({**RECORD, "tag": "new"}) != digest(RECORD)  # a new payload field


def test_excluded_fields_no_template_reads_do_not_change_the_hash() -> None:
    assert digest({**RECORD, "raw": b"\xff"}) == digest(RECORD)


def test_with_an_include_list_only_included_and_templated_fields_count() -> None:
    spec = make_spec(payload={"include": ["title"]})
    assert digest({**RECORD, "other": 1}, spec) == digest(RECORD, spec)
    assert digest({**RECORD, "body": "x"}, spec) != digest(RECORD, spec)


def test_bytes_and_odd_values_hash_without_failing() -> None:
    spec = make_spec(payload={"exclude": []})
    image = {**RECORD, "raw": b"\x89PNG" * 1000}
    assert digest(image, spec) != digest({**image, "raw": b"\x89PNG" * 999}, spec)


def test_changing_the_spec_changes_every_hash() -> None:
    other = make_spec(
        vectors={
            "dense": {
                "text": "{title}. {body}",
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "options": {"mrl": 64},
            },
            "bm25": {"text": "{body}", "model": "qdrant/bm25"},
        }
    )
    assert digest(RECORD, other) != digest(RECORD)
    assert digest(RECORD, make_spec(id="{title}")) != digest(RECORD)


def test_the_hash_is_sha256_of_the_fingerprint_and_the_part_as_sorted_json() -> None:
    """Stored hashes stay valid across versions only if the formula does not drift."""
    spec = make_spec(payload={"exclude": []})
    fingerprint = spec_fingerprint(spec)
    for record in (RECORD, {"id": "ü-7", "title": "Ofen ✓", "body": "x\ny", "n": [1, 2.5, None]}):
        part = {k: v for k, v in record.items() if not isinstance(v, bytes)}
        text = json.dumps([fingerprint, part], sort_keys=True, separators=(",", ":"))
        assert content_hash(part, fingerprint) == hashlib.sha256(text.encode()).hexdigest()[:32]
