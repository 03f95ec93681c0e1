"""Searching what the pipeline wrote: dense, MRL prefetch + rescore, and hybrid RRF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from conftest import run_collect
from model_factory import TINY_TEXT_MODEL_NAME

from qdrant_beam import EmbedPoints, load_spec
from qdrant_beam.connectors import QdrantTarget, WriteToQdrant
from qdrant_beam.pipelines.query import QueryEmbedder, search
from qdrant_beam.transforms import SpecError

ROWS = [
    {"id": 1, "t": "the quick brown fox jumps over the lazy dog"},
    {"id": 2, "t": "coffee in the morning and music at night"},
    {"id": 3, "t": "vector search with payload filters"},
    {"id": 4, "t": "river and mountain weather report"},
]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, models_map: dict[str, Any]) -> Any:
    spec = load_spec(
        {
            "collection": "q",
            "id": "{id}",
            "vectors": {
                "dense": {"text": "{t}", "model": TINY_TEXT_MODEL_NAME},
                "dense_4": {"text": "{t}", "model": TINY_TEXT_MODEL_NAME, "options": {"mrl": 4}},
                "bm25": {"text": "{t}", "model": "qdrant/bm25"},
            },
            "models": models_map,
        }
    )
    target = QdrantTarget(path=str(Path(tmp_path_factory.mktemp("q")) / "db"))

    def build(p: beam.Pipeline) -> Any:
        points, _ = p | beam.Create(ROWS) | EmbedPoints(spec)
        return points | WriteToQdrant(target, spec=spec)

    run_collect(build)
    client = target.connect()
    yield spec, client
    target.release(client)


@pytest.mark.parametrize(
    "kwargs", [{}, {"small": "dense_4"}, {"sparse": "bm25"}, {"small": "dense_4", "sparse": "bm25"}]
)
def test_exact_text_ranks_first(indexed: Any, kwargs: dict[str, str]) -> None:
    spec, client = indexed
    hits = search(client, spec, "vector search with payload filters", vector="dense", **kwargs)
    assert hits[0].id == 3
    assert len(hits) == 4 and hits[0].payload["t"] == ROWS[2]["t"]


def test_query_embedder_refuses_unknown_vectors(indexed: Any) -> None:
    spec, _ = indexed
    with pytest.raises(SpecError, match="no vector 'nope'"):
        QueryEmbedder(spec).embed("nope", "x")
