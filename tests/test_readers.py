"""Readers turn files into dict records and bad lines into dead letters; dead letters are
written as JSON lines with secrets removed."""

from __future__ import annotations

import base64
import bz2
import datetime
import decimal
import gzip
import json
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_collect
from qdrant_client import models

from qdrant_beam.pipelines.dead_letter_sink import (
    BYTES_MARKER,
    REDACTED,
    WriteDeadLetters,
    dead_letter_json,
)
from qdrant_beam.pipelines.readers import (
    MAX_DEAD_LETTER_CHARS,
    ReadRecords,
    count_records,
    fields_used,
    infer_format,
)
from qdrant_beam.transforms import FailedRecord, SpecError, Stage


def _read(pattern: str, **kwargs: Any) -> tuple[list[Any], list[FailedRecord]]:
    out, _ = run_collect(lambda p: p | ReadRecords(pattern, **kwargs))
    return out["records"], out["dead_letters"]


def _by_id(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: str(r["id"]))


# --------------------------------------------------------------------------------------------
# JSONL


def test_jsonl_reads_objects_and_dead_letters_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    long_bad = "{" + "x" * (MAX_DEAD_LETTER_CHARS + 50)
    path.write_text(
        "\n".join(
            [
                '\ufeff{"id": 1, "title": "one"}',
                '{"id": 2, "title": ',
                "",
                "[1, 2]",
                "   ",
                '{"id": 3, "title": "three", "meta": {"a": [1, 2]}}',
                long_bad,
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    records, dead = _read(str(path))
    assert _by_id(records) == [
        {"id": 1, "title": "one"},
        {"id": 3, "title": "three", "meta": {"a": [1, 2]}},
    ]
    by_type = sorted(dead, key=lambda f: (f.error_type, len(f.record["line"])))
    assert [f.error_type for f in by_type] == ["InvalidJSON", "InvalidJSON", "NotAnObject"]
    invalid, truncated, not_object = by_type
    assert invalid.record == {"line": '{"id": 2, "title": ', "source": str(path)}
    assert "column 20" in invalid.message
    assert len(truncated.record["line"]) == MAX_DEAD_LETTER_CHARS
    assert not_object.record["line"] == "[1, 2]"
    assert "got list" in not_object.message
    assert all(f.stage == Stage.READ and f.attempts == 1 for f in dead)


def test_jsonl_gzip_and_projection(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for i in range(3):
            handle.write(json.dumps({"id": i, "body": "b" * i, "drop": True}) + "\n")
    records, dead = _read(str(path), columns=["id", "body"])
    assert _by_id(records) == [{"id": i, "body": "b" * i} for i in range(3)]
    assert dead == []


def test_jsonl_glob_over_two_files(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "a"}\n')
    (tmp_path / "b.jsonl").write_text('{"id": "b"}\nnot json\n')
    records, dead = _read(str(tmp_path / "*.jsonl"))
    assert _by_id(records) == [{"id": "a"}, {"id": "b"}]
    assert [(f.record["line"], f.record["source"]) for f in dead] == [
        ("not json", str(tmp_path / "b.jsonl"))
    ]


# --------------------------------------------------------------------------------------------
# Parquet


def _write_parquet(path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "title": pa.array(["one", None]),
            "body": pa.array(["long body", "other"]),
            # 1 ns past a microsecond: pyarrow cannot make a datetime of it unaided.
            "ts": pa.array([1_700_000_000_000_000_001, 0], pa.timestamp("ns", tz="UTC")),
            "day": pa.array([datetime.date(2024, 1, 2), None], pa.date32()),
            "price": pa.array([decimal.Decimal("1.25"), None], pa.decimal128(5, 2)),
            "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
            "attrs": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())),
            "blob": pa.array([b"\x00\x01", None], pa.binary()),
        }
    )
    pq.write_table(table, path)


def test_parquet_projection_and_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    _write_parquet(path)
    columns = ["id", "title", "ts", "day", "price", "tags", "attrs", "blob"]
    records, dead = _read(str(path), columns=columns)
    assert dead == []
    one, two = _by_id(records)
    assert "body" not in one and set(one) == set(columns)
    assert one["ts"] == "2023-11-14T22:13:20+00:00"
    assert two["ts"] == "1970-01-01T00:00:00+00:00"
    assert one["day"] == "2024-01-02" and two["day"] is None
    assert one["price"] == 1.25
    assert one["tags"] == ["a", "b"] and two["tags"] == []
    assert one["attrs"] == {"k": 1}
    assert one["blob"] == b"\x00\x01"
    assert two["title"] is None
    json.dumps({k: v for k, v in one.items() if k != "blob"})  # JSON-safe


# --------------------------------------------------------------------------------------------
# CSV


def test_csv_quoted_newlines_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "id,title,body\r\n"  # line 1
        '1,One,"multi\nline body"\r\n'  # lines 2-3
        "2,Two\r\n"  # line 4: too few fields
        "\r\n"  # line 5: blank, skipped
        '3,"Three, quoted",\r\n'  # line 6: empty body stays ""
        "4,Four,x,extra\r\n",  # line 7: too many fields
        encoding="utf-8",
    )
    records, dead = _read(str(path))
    assert _by_id(records) == [
        {"id": "1", "title": "One", "body": "multi\nline body"},
        {"id": "3", "title": "Three, quoted", "body": ""},
    ]
    assert sorted((f.record["line"], f.error_type, tuple(f.record["row"])) for f in dead) == [
        (4, "TooFewFields", ("2", "Two")),
        (7, "TooManyFields", ("4", "Four", "x", "extra")),
    ]
    assert all(f.record["source"] == str(path) and f.stage == Stage.READ for f in dead)
    assert "row has 2 fields, the header has 3" in {f.message for f in dead}


def test_csv_projection_and_bzip2(tmp_path: Path) -> None:
    path = tmp_path / "in.csv.bz2"
    path.write_bytes(bz2.compress(b"\xef\xbb\xbfid,title,body\n1,One,B1\n2,Two,B2\n"))
    records, dead = _read(str(path), columns=["id", "body", "absent"])
    assert _by_id(records) == [{"id": "1", "body": "B1"}, {"id": "2", "body": "B2"}]
    assert dead == []


def test_csv_invalid_utf8_costs_one_row_and_long_fields_pass(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    long_text = "x" * 200_000  # beyond Python's default csv field limit
    path.write_bytes(b"id,t\n1,a\n2,\xff\xfe\n3," + long_text.encode() + b"\n")
    records, dead = _read(str(path))
    assert _by_id(records) == [{"id": "1", "t": "a"}, {"id": "3", "t": long_text}]
    assert [(f.error_type, f.record["line"], f.record["row"][0]) for f in dead] == [
        ("InvalidUTF8", 3, "2")
    ]


def test_write_dead_letters_writes_an_empty_file_when_nothing_failed(tmp_path: Path) -> None:
    def build(p: beam.Pipeline) -> dict[str, Any]:
        empty = p | beam.Create([]).with_output_types(FailedRecord)
        return {"files": empty | WriteDeadLetters(str(tmp_path / "dl"))}

    out, _ = run_collect(build)
    assert out["files"] == [str(tmp_path / "dl.jsonl")]
    assert (tmp_path / "dl.jsonl").read_text() == ""


def test_write_dead_letters_replaces_the_file_and_leaves_no_temporary_files(
    tmp_path: Path,
) -> None:
    target = tmp_path / "dead.jsonl"
    target.write_text("from an earlier run\n")
    failed = [FailedRecord({"id": i}, Stage.MAP, "InvalidRecord", "bad") for i in range(3)]

    def build(p: beam.Pipeline) -> dict[str, Any]:
        return {"files": p | beam.Create(failed) | WriteDeadLetters(str(target))}

    out, _ = run_collect(build)
    assert out["files"] == [str(target)]
    assert sorted(json.loads(line)["record"]["id"] for line in target.read_text().splitlines()) == [
        0,
        1,
        2,
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["dead.jsonl"]


# --------------------------------------------------------------------------------------------
# Formats, fields, counts


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("gs://bucket/data/*.jsonl", "jsonl"),
        ("data/part-1.ndjson.gz", "jsonl"),
        ("DATA.JSON.BZ2", "jsonl"),
        ("s3://b/x/*.parquet", "parquet"),
        ("x.pq", "parquet"),
        ("rows.csv", "csv"),
        ("rows.csv.gz", "csv"),
    ],
)
def test_infer_format(pattern: str, expected: str) -> None:
    assert infer_format(pattern) == expected


def test_infer_format_refuses_what_it_cannot_tell() -> None:
    with pytest.raises(SpecError, match="--format"):
        infer_format("data/*")
    with pytest.raises(SpecError, match="compressed internally"):
        infer_format("x.parquet.gz")
    with pytest.raises(SpecError, match="unknown input format 'xml'"):
        ReadRecords("x.jsonl", format="xml")
    assert ReadRecords("data/*", format="csv", validate=False).format == "csv"


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "collection": "docs",
        "id": "{doc_id}",
        "vectors": {
            "bm25": {"text": "{title}. {meta.summary}", "model": "qdrant/bm25"},
            "body": {"text": "{body}", "model": "qdrant/bm25"},
        },
        **extra,
    }


def test_fields_used() -> None:
    assert fields_used(_spec()) is None
    assert fields_used(_spec(payload={"exclude": ["body"]})) is None
    assert fields_used(_spec(payload={"include": ["url", "title"]})) == [
        "doc_id",
        "title",
        "meta",
        "body",
        "url",
    ]


def test_count_records(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": 1}\n{"id": 2}\n{"id": 3}')
    (tmp_path / "b.jsonl").write_text('{"id": 4}\n')
    assert count_records(str(tmp_path / "*.jsonl")) == 4
    (tmp_path / "c.csv").write_text("id,x\n1,a\n2,b\n")
    assert count_records(str(tmp_path / "c.csv")) == 2
    _write_parquet(tmp_path / "d.parquet")
    _write_parquet(tmp_path / "e.parquet")
    assert count_records(str(tmp_path / "*.parquet")) == 4
    with gzip.open(tmp_path / "f.jsonl.gz", "wt") as handle:
        handle.write('{"id": 1}\n')
    assert count_records(str(tmp_path / "f.jsonl.gz")) is None
    assert count_records(str(tmp_path / "none-*.jsonl")) == 0
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    assert count_records(str(tmp_path / "broken.parquet")) is None


# --------------------------------------------------------------------------------------------
# Dead letters


def test_dead_letter_json_redacts_secrets() -> None:
    point = models.PointStruct(
        id="5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
        payload={"title": "t", "nested": {"Authorization": "Bearer x"}},
        vector={
            "dense": models.Document(
                text="hello",
                model="openai/text-embedding-3-small",
                options={"openai-api-key": "sk-secret", "dimensions": 64},
            ),
            "image": models.Image(image=b"\x89PNG", model="qdrant/clip"),
            "floats": [0.5, 0.25],
        },
    )
    line = dead_letter_json(FailedRecord(point, Stage.INFERENCE, "AuthError", "401", 3))
    assert "sk-secret" not in line and "Bearer" not in line
    out = json.loads(line)
    assert out["stage"] == "inference" and out["error_type"] == "AuthError"
    assert out["reason"] == "401" and out["attempts"] == 3
    record = out["record"]
    assert set(record) == {"id", "payload", "vector"}
    assert record["payload"]["nested"]["Authorization"] == REDACTED
    dense = record["vector"]["dense"]
    assert dense["options"] == {"openai-api-key": REDACTED, "dimensions": 64}
    assert dense["text"] == "hello" and dense["model"] == "openai/text-embedding-3-small"
    image = record["vector"]["image"]["image"]
    assert base64.b64decode(image[BYTES_MARKER]) == b"\x89PNG"
    assert record["vector"]["floats"] == [0.5, 0.25]

    record_dict = {
        "text": "x",
        "api_key": "k1",
        "cfg": [{"Cohere_API_KEY": "k2"}],
        "n": float("nan"),
    }
    out = json.loads(dead_letter_json(FailedRecord(record_dict, Stage.MAP, "InvalidRecord", "m")))
    assert out["record"] == {
        "text": "x",
        "api_key": REDACTED,
        "cfg": [{"Cohere_API_KEY": REDACTED}],
        "n": "NaN",
    }


def test_dead_letter_file_names() -> None:
    assert WriteDeadLetters("out/dead").path == "out/dead.jsonl"
    assert WriteDeadLetters("out/dead.jsonl").path == "out/dead.jsonl"
    assert WriteDeadLetters("gs://b/dead-letters/").path == "gs://b/dead-letters/dead-letters.jsonl"


def test_write_dead_letters(tmp_path: Path) -> None:
    target = tmp_path / "dead" / "letters.jsonl"
    first = [FailedRecord({"line": "bad", "api-key": "s"}, Stage.READ, "InvalidJSON", "m")]
    second = [FailedRecord({"id": 1}, Stage.MAP, "InvalidRecord", "field 'title' is missing")]

    def build(p: beam.Pipeline) -> dict[str, Any]:
        a = p | "A" >> beam.Create(first)
        b = p | "B" >> beam.Create(second)
        return {"files": (a, b) | WriteDeadLetters(str(target))}

    out, _ = run_collect(build)
    assert out["files"] == [str(target)]
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert sorted(line["stage"] for line in lines) == ["map", "read"]
    assert {"line": "bad", "api-key": REDACTED} in [line["record"] for line in lines]
    assert WriteDeadLetters(str(tmp_path / "dl")).path == str(tmp_path / "dl.jsonl")
