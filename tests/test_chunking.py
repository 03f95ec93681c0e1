"""Long texts: token-aware chunks, a multivector per record or a point per chunk, stale
chunks cleaned up on reindex, and answers past the model's window found."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from conftest import counter, pipeline_options, run_collect
from model_factory import TINY_TEXT_MODEL_NAME
from qdrant_client import models

from qdrant_beam import EmbedPoints, QdrantTarget, WriteToQdrant, load_spec
from qdrant_beam.io.errors import SpecError
from qdrant_beam.pipelines.jobs import run_reindex
from qdrant_beam.pipelines.query import search
from qdrant_beam.transforms import chunkers
from qdrant_beam.transforms.backends.local import TokenMeter
from qdrant_beam.transforms.chunking import Chunker
from qdrant_beam.transforms.prepare import FromRecords
from qdrant_beam.transforms.records_to_points import RecordsToPoints

# words of the tiny model's vocabulary: one token each
WORDS = "the quick brown fox jumps over lazy dog river sea mountain tree fish bird".split()  # noqa: SIM905


def sentence(i: int, n: int = 6) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n)).capitalize() + "."


def paragraphs(count: int, sentences: int = 4, start: int = 0) -> str:
    return "\n\n".join(
        " ".join(sentence(start + p * sentences + s) for s in range(sentences))
        for p in range(count)
    )


@pytest.fixture
def tiny(models_map: dict[str, Any]) -> dict[str, Any]:
    return {TINY_TEXT_MODEL_NAME: models_map[TINY_TEXT_MODEL_NAME]}


def spec_of(models: dict[str, Any], **extra: Any) -> Any:
    return load_spec({"collection": "docs", "id": "{doc_id}", "models": models, **extra})


# -- the chunker ------------------------------------------------------------------------------


def test_chunks_respect_the_limit_cover_the_text_and_prefer_paragraphs(
    model_dirs: dict[str, Path],
) -> None:
    meter = TokenMeter(model_dirs["text"])
    tokenizer = meter.tokenizer
    chunker = Chunker(20, overlap=8, tokenizer=tokenizer)  # overlap: a sentence (7 tokens)
    text = paragraphs(6)
    chunks = chunker.split(text)
    assert len(chunks) > 3
    covered = set()
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(tokenizer.encode(chunk.text, add_special_tokens=False).ids) <= 20
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    assert [c.index for c in chunks] == list(range(len(chunks)))
    overlaps = [b.start < a.end for a, b in itertools.pairwise(chunks)]
    assert any(overlaps), "consecutive chunks share up to `overlap` tokens"
    ends = [text[c.end :].startswith("\n\n") or c.end == len(text) for c in chunks]
    assert sum(ends) >= len(text.split("\n\n")) - 1, "paragraph breaks end chunks"
    assert chunker.split("") == [] and chunker.split("  \n ") == []
    assert [c.text for c in chunker.split("Short text.")] == ["Short text."]


def test_lines_wrapped_inside_a_paragraph_do_not_end_chunks(model_dirs: dict[str, Path]) -> None:
    tokenizer = TokenMeter(model_dirs["text"]).tokenizer
    prose = " ".join(sentence(i) for i in range(12)).split(" ")
    # one paragraph hard-wrapped every 4 words, across sentence ends
    wrapped = "\n".join(" ".join(prose[i : i + 4]) for i in range(0, len(prose), 4))
    by_paragraph = Chunker(16, tokenizer=tokenizer).split(wrapped)
    by_line = Chunker(16, tokenizer=tokenizer, boundaries="line").split(wrapped)
    for chunk in by_paragraph:  # spans still index the original text
        assert wrapped[chunk.start : chunk.end] == chunk.text
    assert all(c.text.endswith(".") for c in by_paragraph), "ends at sentences"
    for chunk in by_line:
        assert wrapped[chunk.end : chunk.end + 1] in ("\n", ""), "ends at a line break"


def test_the_default_size_is_the_window_less_special_tokens(tiny: dict[str, Any]) -> None:
    spec = spec_of(
        tiny,
        vectors={"v": {"text": "{body}", "model": TINY_TEXT_MODEL_NAME, "chunking": {}}},
    )
    assert chunkers.build(spec)["v"].max_tokens == 32 - 2  # the tiny model's window is 32


def test_chunking_is_checked_in_the_spec(tiny: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match="needs a top-level `chunks` block"):
        spec_of(tiny, vectors={"v": {"text": "{chunk}", "model": TINY_TEXT_MODEL_NAME}})
    with pytest.raises(SpecError, match="only dense text vectors"):
        spec_of(tiny, vectors={"b": {"text": "{body}", "model": "qdrant/bm25", "chunking": {}}})
    with pytest.raises(SpecError, match="overlap 30 must be below max_tokens 20"):
        spec_of(
            tiny,
            vectors={
                "v": {
                    "text": "{body}",
                    "model": TINY_TEXT_MODEL_NAME,
                    "chunking": {"max_tokens": 20, "overlap": 30},
                }
            },
        )
    with pytest.raises(SpecError, match="no vector reads"):
        spec_of(
            tiny,
            chunks={"text": "{body}"},
            vectors={"v": {"text": "{body}", "model": TINY_TEXT_MODEL_NAME}},
        )


# -- a multivector per record -----------------------------------------------------------------


def multivector_spec(models: dict[str, Any], **chunking: Any) -> Any:
    chunks = {"max_tokens": 20, "overlap": 4, **chunking}
    return spec_of(
        models,
        vectors={
            "body": {"text": "{body}", "model": TINY_TEXT_MODEL_NAME, "chunking": chunks},
            "body_4": {
                "text": "{body}",
                "model": TINY_TEXT_MODEL_NAME,
                "options": {"mrl": 4},
                "chunking": chunks,
            },
        },
    )


def test_a_multivector_of_chunks_per_record(tiny: dict[str, Any], tmp_path: Path) -> None:
    spec = multivector_spec(tiny)
    records = [
        {"doc_id": "a", "body": paragraphs(5)},
        {"doc_id": "b", "body": paragraphs(5)},  # the same text: its chunks cost nothing
        {"doc_id": "c", "body": "Short."},
    ]
    target = QdrantTarget(path=str(tmp_path / "q"), engine="edge")

    def build(p: beam.Pipeline) -> dict[str, Any]:
        points, dead = p | beam.Create(records) | EmbedPoints(spec)
        _, write_dead = points | WriteToQdrant(target, spec=spec)
        return {"dead": dead, "write_dead": write_dead, "points": points}

    out, result = run_collect(build)
    assert out["dead"] == [] and out["write_dead"] == []
    chunks = chunkers.build(spec)["body"].split(records[0]["body"])
    expected = len(chunks)
    client = target.connect()
    try:
        params = client.get_collection("docs").config.params.vectors
        for name, size in (("body", 16), ("body_4", 4)):
            assert params[name].size == size
            assert (
                params[name].multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
            )
        stored = {
            r.payload["doc_id"]: r.vector
            for r in client.scroll("docs", limit=10, with_vectors=True)[0]
        }
    finally:
        target.release(client)
    assert len(stored["a"]["body"]) == expected > 3
    assert all(len(row) == 16 for row in stored["a"]["body"])
    assert all(len(row) == 4 for row in stored["a"]["body_4"])  # mrl per chunk
    assert len(stored["c"]["body"]) == 1
    for row_a, row_b in zip(stored["a"]["body"], stored["b"]["body"], strict=True):
        assert row_a == pytest.approx(row_b)
    unique = len({c.text for c in chunks}) + 1  # identical chunks, in a record or not: once
    assert counter(result, "model_inputs") == unique


def test_max_chunks_truncates_or_dead_letters(tiny: dict[str, Any]) -> None:
    record = {"doc_id": "a", "body": paragraphs(6)}
    for over_max, mapped, dead in (("truncate", 1, 0), ("dead_letter", 0, 1)):
        spec = multivector_spec(tiny, max_chunks=2, over_max=over_max)
        prepare = FromRecords(spec)
        prepare.setup()
        got, failed = prepare.prepare([record])
        assert (len(got), len(failed)) == (mapped, dead)
        if mapped:
            assert sum(1 for name, *_ in got[0].inputs if name == "body") == 2
        else:
            assert "over max_chunks 2" in failed[0].message


def test_records_to_points_refuses_a_chunked_multivector(tiny: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match="use EmbedPoints"):
        RecordsToPoints(multivector_spec(tiny))


# -- a point per chunk ------------------------------------------------------------------------


def chunk_points_spec(models: dict[str, Any]) -> Any:
    return spec_of(
        models,
        payload={"include": ["doc_id", "title"]},
        chunks={"text": "{body}", "max_tokens": 20, "include_text": True},
        vectors={
            "dense": {"text": "{title}. {chunk}", "model": TINY_TEXT_MODEL_NAME},
            "bm25": {"text": "{title}. {body}", "model": "qdrant/bm25"},  # the whole record
        },
    )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def stored(target: QdrantTarget) -> list[Any]:
    client = target.connect()
    try:
        return client.scroll("docs", limit=1000, with_vectors=True)[0]
    finally:
        target.release(client)


def reindex(spec_path: Path, data: Path, qdrant: Path, *extra: str) -> Any:
    options = pipeline_options(
        f"--spec={spec_path}",
        f"--input={data}",
        f"--qdrant-path={qdrant}",
        "--qdrant-engine=edge",
        "--progress-interval=0",
        *extra,
    )
    return run_reindex(options, emit=lambda line: None)


def test_chunk_points_reindex_shrinks_grows_and_deletes(
    tiny: dict[str, Any], tmp_path: Path
) -> None:
    spec = chunk_points_spec(tiny)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.model_dump_json(exclude_unset=True), encoding="utf-8")
    qdrant = tmp_path / "q"
    target = QdrantTarget(path=str(qdrant), engine="edge")
    count = lambda body: len(chunkers.build(spec)["chunks"].split(body))  # noqa: E731
    first = [
        {"doc_id": "a", "title": "A", "body": paragraphs(5)},
        {"doc_id": "b", "title": "B", "body": paragraphs(2, start=3)},
        {"doc_id": "c", "title": "C", "body": paragraphs(1, start=5)},
    ]
    reindex(spec_path, write_jsonl(tmp_path / "1.jsonl", first), qdrant)
    points = stored(target)
    by_doc = Counter(p.payload["doc_id"] for p in points)
    assert by_doc == {r["doc_id"]: count(r["body"]) for r in first}
    assert by_doc["a"] >= 5
    a0 = next(p for p in points if p.payload["doc_id"] == "a" and p.payload["chunk_index"] == 0)
    assert a0.payload["chunk_span"][0] == 0 and a0.payload["chunk_text"]
    assert a0.payload["chunk_count"] == by_doc["a"]
    assert isinstance(a0.vector["bm25"], models.SparseVector)

    second = [
        {"doc_id": "a", "title": "A", "body": paragraphs(2)},  # shrinks
        {"doc_id": "b", "title": "B", "body": paragraphs(4, start=3)},  # grows
    ]
    reindex(spec_path, write_jsonl(tmp_path / "2.jsonl", second), qdrant, "--delete-missing")
    points = stored(target)
    by_doc = Counter(p.payload["doc_id"] for p in points)
    assert by_doc == {"a": count(second[0]["body"]), "b": count(second[1]["body"])}
    assert by_doc["a"] < count(first[0]["body"]), "it shrank, and no stale chunk is left"
    assert by_doc["b"] > count(first[1]["body"]), "it grew"
    ids = {p.id for p in points}

    again = reindex(spec_path, tmp_path / "2.jsonl", qdrant, "--delete-missing")
    assert again.summary.reindex.get("skipped") == 2 and again.summary.points_written == 0
    assert {p.id for p in stored(target)} == ids, "ids are stable across runs"


def test_chunk_points_come_back_grouped_by_parent(tiny: dict[str, Any], tmp_path: Path) -> None:
    spec = chunk_points_spec(tiny)
    records = [
        {"doc_id": f"d{i}", "title": f"T{i}", "body": paragraphs(4, start=i)} for i in range(5)
    ]
    target = QdrantTarget(path=str(tmp_path / "q"), engine="edge")
    with beam.Pipeline(options=pipeline_options()) as p:
        points, _ = p | beam.Create(records) | EmbedPoints(spec)
        _ = points | WriteToQdrant(target, spec=spec)
    client = target.connect()
    try:
        flat = search(client, spec, "alpha beta gamma", vector="dense", limit=20)
        grouped = search(
            client, spec, "alpha beta gamma", vector="dense", limit=5, group_by_parent=True
        )
    finally:
        target.release(client)
    assert len({h.payload["parent_id"] for h in flat}) < len(flat), "chunks of one record"
    parents = [h.payload["parent_id"] for h in grouped]
    assert len(parents) == len(set(parents)) == 5


# -- answers past the window --------------------------------------------------------------------

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
FILLER = (
    "The quarterly meeting reviewed the usual items of the agenda. Minutes of the previous "
    "session were read and approved without changes. The committee discussed the schedule "
    "for the coming months, the allocation of rooms, and the rotation of duties among the "
    "members. Several routine reports were received and filed for later reference. "
)
#: (the fact placed past the window, the question that finds it)
FACTS = [
    (
        "The lighthouse keeper on Harrow Island feeds seven cats every morning.",
        "who feeds the cats at the lighthouse",
    ),
    (
        "A volcano erupted beside the glacier and melted its ice into a lake.",
        "volcanic eruption melting a glacier",
    ),
    (
        "The chess tournament was won by a twelve-year-old girl from Lagos.",
        "young girl wins a chess tournament",
    ),
    (
        "Bees in the rooftop hives make honey that tastes of lime blossom.",
        "honey from bees kept on a roof",
    ),
    (
        "A fishing trawler cut the submarine cable between the two islands.",
        "undersea cable damaged by a fishing boat",
    ),
    (
        "A rare orchid in the rainforest flowers only once every seven years.",
        "orchid that blooms every seven years",
    ),
    (
        "The violin maker carves his instruments from maple aged for forty years.",
        "wood used to make violins",
    ),
    (
        "Astronomers observed a comet with a bright green tail last winter.",
        "comet with a green tail",
    ),
]


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from minilm import assemble_minilm

    return assemble_minilm(tmp_path_factory.mktemp("minilm") / "all-MiniLM-L6-v2", variant="int8")


def _hits_at_1(spec: Any, target: QdrantTarget, vector: str, group: bool) -> int:
    client = target.connect()
    try:
        found = 0
        for i, (_, question) in enumerate(FACTS):
            hits = search(client, spec, question, vector=vector, limit=1, group_by_parent=group)
            found += hits[0].payload["doc_id"] == f"doc-{i}"
        return found
    finally:
        target.release(client)


@pytest.mark.model
def test_answers_past_the_window_are_found_only_with_chunks(minilm: Path, tmp_path: Path) -> None:
    """Each answer sits after ~330 tokens of the same minutes: without chunking the model
    never sees it (all documents embed alike); with either chunking mode, it is found."""
    models_map = {MINILM: {"path": str(minilm)}}
    records = [
        {"doc_id": f"doc-{i}", "body": FILLER * 6 + "\n\n" + fact}
        for i, (fact, _) in enumerate(FACTS)
    ]
    truncated = spec_of(
        models_map,
        payload={"include": ["doc_id"]},
        vectors={"dense": {"text": "{body}", "model": MINILM}},
    )
    multivector = spec_of(
        models_map,
        payload={"include": ["doc_id"]},
        vectors={"dense": {"text": "{body}", "model": MINILM, "chunking": {"overlap": 32}}},
    )
    chunk_points = spec_of(
        models_map,
        payload={"include": ["doc_id"]},
        chunks={"text": "{body}", "overlap": 32},
        vectors={"dense": {"text": "{chunk}", "model": MINILM}},
    )
    found = {}
    for name, spec in (
        ("truncated", truncated),
        ("multivector", multivector),
        ("points", chunk_points),
    ):
        target = QdrantTarget(path=str(tmp_path / name), engine="edge")
        with beam.Pipeline(options=pipeline_options()) as p:
            points, _ = p | beam.Create(records) | EmbedPoints(spec)
            _ = points | WriteToQdrant(target, spec=spec)
        found[name] = _hits_at_1(spec, target, "dense", group=name == "points")
    assert found["multivector"] == len(FACTS)
    assert found["points"] == len(FACTS)
    assert found["truncated"] <= 2, found  # the answers are past what the model reads


# -- remote models ------------------------------------------------------------------------------


def test_remote_chunks_are_deduplicated_and_batched_like_any_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tokens of a remote model are estimated (bytes / 3); the provider receives each
    distinct chunk once, in as few requests as its limits allow."""
    from fakes.providers import ProviderServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = "openai/text-embedding-3-small"
    with ProviderServer("openai", api_key="sk-test") as server:
        spec = load_spec(
            {
                "collection": "docs",
                "id": "{doc_id}",
                "vectors": {
                    "body": {
                        "text": "{body}",
                        "model": model,
                        "options": {"dimensions": 32},
                        "chunking": {"max_tokens": 40},
                    }
                },
                "providers": {"openai": {"base_url": server.base_url}},
            }
        )
        body = paragraphs(6)
        records = [{"doc_id": "a", "body": body}, {"doc_id": "b", "body": body}]
        out, _ = run_collect(lambda p: p | beam.Create(records) | EmbedPoints(spec))
        stats = server.stats()
    chunks = chunkers.build(spec)["body"].split(body)
    assert len(chunks) > 3
    assert all(len(c.text.encode()) / 3 <= 40 for c in chunks)
    assert stats["inputs_received"] == len({c.text for c in chunks}), "each chunk once"
    assert stats["requests"] == 1
    vectors = {p.id: p.vector["body"] for p in out["points"]}
    assert len(vectors) == 2 and all(len(v) == len(chunks) for v in vectors.values())
