"""WriteToQdrant against a real Qdrant server; skipped unless ``QDRANT_URL`` is set.

Run with::

    QDRANT_URL=http://localhost:6333 [QDRANT_API_KEY=...] [QDRANT_GRPC_PORT=6334] \\
        pytest -m integration tests/test_real_qdrant.py

Writes 1,000 points (named dense vectors of 384 and 64 dimensions and an IDF sparse vector)
to a uniquely named collection, checks the count and a sample, then deletes the collection.
The gRPC variant runs only when ``QDRANT_GRPC_PORT`` is set too.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pytest
from conftest import counter, run_collect
from qdrant_client import models

from qdrant_beam.connectors import (
    METRICS_NAMESPACE,
    CollectionSchema,
    DenseVector,
    QdrantTarget,
    SparseVector,
    WriteToQdrant,
)

# Read at import: tests/conftest.py's autouse fixture removes every *_API_KEY variable.
QDRANT_URL = os.environ.get("QDRANT_URL")
QDRANT_API_KEY = os.environ.get("QDRANT_API_KEY")
QDRANT_GRPC_PORT = os.environ.get("QDRANT_GRPC_PORT")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not QDRANT_URL, reason="set QDRANT_URL to run against a real Qdrant"),
]

N_POINTS = 1_000
SAMPLE = (0, 1, 499, 998, 999, *random.Random(11).sample(range(N_POINTS), 20))


def make_point(i: int) -> models.PointStruct:
    rng = random.Random(i)
    nonzero = rng.randint(5, 30)
    return models.PointStruct(
        id=i,
        vector={
            "big": [rng.uniform(-1, 1) for _ in range(384)],
            "small": [rng.uniform(-1, 1) for _ in range(64)],
            "sparse": models.SparseVector(
                indices=sorted(rng.sample(range(100_000), nonzero)),
                values=[rng.uniform(0.1, 3.0) for _ in range(nonzero)],
            ),
        },
        payload={"n": i, "lang": ["en", "de", "fr"][i % 3], "title": f"document {i}"},
    )


class _Points(beam.DoFn):
    def process(self, _: Any) -> Iterator[models.PointStruct]:
        for i in range(N_POINTS):
            yield make_point(i)


@pytest.fixture(params=["rest", "grpc"])
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> QdrantTarget:
    if request.param == "grpc" and not QDRANT_GRPC_PORT:
        pytest.skip("set QDRANT_GRPC_PORT to run the gRPC variant")
    api_key_env = None
    if QDRANT_API_KEY:
        monkeypatch.setenv("QDRANT_API_KEY", QDRANT_API_KEY)  # read by the workers
        api_key_env = "QDRANT_API_KEY"
    return QdrantTarget(
        url=QDRANT_URL,
        api_key_env=api_key_env,
        prefer_grpc=request.param == "grpc",
        grpc_port=int(QDRANT_GRPC_PORT or 6334),
    )


@pytest.fixture
def collection(target: QdrantTarget) -> Iterator[str]:
    name = f"qdrant_beam_it_{uuid.uuid4().hex[:12]}"
    yield name
    client = target.connect()
    try:
        client.delete_collection(name)
        assert not client.collection_exists(name)
    finally:
        target.release(client)


def test_write_1000_points_with_dense_and_sparse_vectors(
    target: QdrantTarget, collection: str
) -> None:
    schema = CollectionSchema(
        collection,
        {"big": DenseVector(384), "small": DenseVector(64, "Dot")},
        {"sparse": SparseVector("idf")},
        {"lang": "keyword"},
    )
    sink = WriteToQdrant(target, schema=schema, upsert_batch_size=128, seed=1)
    out, result = run_collect(lambda p: p | beam.Create([None]) | beam.ParDo(_Points()) | sink)

    assert sink.collection_status == "created"
    assert not out["dead_letters"]
    assert sorted(pid for batch in out["written"] for pid in batch.ids) == list(range(N_POINTS))
    assert counter(result, "points_written", METRICS_NAMESPACE) == N_POINTS

    client = target.connect()
    try:
        assert client.count(collection, exact=True).count == N_POINTS
        lang = models.Filter(
            must=[models.FieldCondition(key="lang", match=models.MatchValue(value="de"))]
        )
        assert client.count(collection, count_filter=lang, exact=True).count == 333
        info = client.get_collection(collection)
        assert info.config.params.vectors["big"].size == 384
        assert info.config.params.sparse_vectors["sparse"].modifier == models.Modifier.IDF
        records = client.retrieve(collection, list(SAMPLE), with_payload=True, with_vectors=True)
    finally:
        target.release(client)

    assert sorted(r.id for r in records) == sorted(set(SAMPLE))
    for record in records:
        want = make_point(record.id)
        assert record.payload == want.payload
        big = np.asarray(want.vector["big"])  # Cosine: Qdrant stores it normalised
        np.testing.assert_allclose(record.vector["big"], big / np.linalg.norm(big), atol=1e-5)
        np.testing.assert_allclose(record.vector["small"], want.vector["small"], atol=1e-5)
        assert record.vector["sparse"].indices == want.vector["sparse"].indices
        np.testing.assert_allclose(
            record.vector["sparse"].values, want.vector["sparse"].values, atol=1e-5
        )
