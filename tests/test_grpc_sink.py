"""WriteToQdrant over gRPC (``QdrantTarget(prefer_grpc=True)``) against a loopback gRPC server.

tests/fakes/qdrant_grpc.py serves Qdrant's gRPC API from qdrant-client's generated stubs and
shares the REST test server's local-mode client, so what the sink writes over gRPC can be read
back over either protocol.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import grpc
import numpy as np
import pytest
from conftest import counter, run_collect
from fakes.qdrant import QdrantTestServer
from fakes.qdrant_grpc import GrpcFault, QdrantGrpcTestServer
from qdrant_client import models

from qdrant_beam.connectors import (
    METRICS_NAMESPACE,
    CollectionSchema,
    DenseVector,
    QdrantTarget,
    RetryPolicy,
    SparseVector,
    WriteToQdrant,
)
from qdrant_beam.connectors.writer import QdrantPointWriter, RetryingWriter

DIM = 8
SCHEMA = CollectionSchema("grpc_docs", {"dense": DenseVector(DIM)}, {"sparse": SparseVector("idf")})
# Short backoffs, and a server's retry-after (1 s) capped to 50 ms.
FAST_RETRIES = RetryPolicy(
    max_attempts=8, initial_backoff_s=0.01, max_backoff_s=0.05, max_retry_after_s=0.05
)


def make_point(i: int, *, dim: int = DIM) -> models.PointStruct:
    rng = random.Random(i)
    return models.PointStruct(
        id=i,
        vector={
            "dense": [rng.random() + 0.01 for _ in range(dim)],
            "sparse": models.SparseVector(
                indices=sorted(rng.sample(range(5_000), 6)), values=[rng.random() for _ in range(6)]
            ),
        },
        payload={"n": i, "tag": f"t{i % 5}", "nested": {"even": i % 2 == 0}},
    )


class _Points(beam.DoFn):
    def __init__(self, n: int, bad: frozenset[int] = frozenset()) -> None:
        self._n = n
        self._bad = bad

    def process(self, _: Any) -> Iterator[models.PointStruct]:
        for i in range(self._n):
            yield make_point(i, dim=DIM - 1 if i in self._bad else DIM)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[QdrantTestServer, QdrantGrpcTestServer]]:
    with QdrantTestServer() as rest, QdrantGrpcTestServer(backend=rest) as grpc_server:
        yield rest, grpc_server


@pytest.fixture
def rest(servers: tuple[QdrantTestServer, QdrantGrpcTestServer]) -> QdrantTestServer:
    servers[0].reset()
    return servers[0]


@pytest.fixture
def grpc_server(
    servers: tuple[QdrantTestServer, QdrantGrpcTestServer], rest: QdrantTestServer
) -> QdrantGrpcTestServer:
    servers[1].reset()
    return servers[1]


@pytest.fixture
def target(rest: QdrantTestServer, grpc_server: QdrantGrpcTestServer) -> QdrantTarget:
    return QdrantTarget(url=rest.url, prefer_grpc=True, grpc_port=grpc_server.port, timeout_s=1)


def write(
    target: QdrantTarget, n: int, *, bad: frozenset[int] = frozenset(), **kwargs: Any
) -> tuple[dict[str, list[Any]], Any]:
    kwargs.setdefault("retry_policy", FAST_RETRIES)
    kwargs.setdefault("schema", SCHEMA)
    return run_collect(
        lambda p: (
            p | beam.Create([None]) | beam.ParDo(_Points(n, bad)) | WriteToQdrant(target, **kwargs)
        )
    )


def write_counter(result: Any, name: str) -> int:
    return counter(result, name, METRICS_NAMESPACE)


def test_pipeline_over_grpc_lands_every_point_and_retries_scripted_faults(
    rest: QdrantTestServer, grpc_server: QdrantGrpcTestServer, target: QdrantTarget
) -> None:
    grpc_server.push_script(
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # no retry-after: a plain grpc.RpcError
        GrpcFault(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after_s=1),  # ResourceExhaustedResponse
        grpc.StatusCode.UNAVAILABLE,
        GrpcFault(grpc.StatusCode.UNAVAILABLE, apply=True),  # stored, then failed: retried anyway
        grpc.StatusCode.DEADLINE_EXCEEDED,  # the server's own timeout
        GrpcFault(grpc.StatusCode.DEADLINE_EXCEEDED, hold=True),  # the client's 1 s deadline
    )
    out, result = write(target, 500, upsert_batch_size=64)

    assert not out["dead_letters"]
    assert sorted(pid for batch in out["written"] for pid in batch.ids) == list(range(500))
    assert grpc_server.script_remaining == 0
    assert write_counter(result, "retries_rate_limited") == 2
    # gRPC UNAVAILABLE becomes Unavailable without a status code: counted as "connection"
    # (REST's 503 counts as http_503, and only that one shrinks the in-flight window).
    assert write_counter(result, "retries_http_503") == 2  # UNAVAILABLE, as REST's 503
    assert write_counter(result, "retries_timeout") == 2
    assert write_counter(result, "points_written") == 500
    assert write_counter(result, "dead_letters") == 0

    stats = grpc_server.stats
    assert stats.faults == {
        "RESOURCE_EXHAUSTED": 2,
        "UNAVAILABLE": 1,
        "UNAVAILABLE+apply": 1,
        "DEADLINE_EXCEEDED": 1,
        "DEADLINE_EXCEEDED+hold": 1,
    }
    assert stats.calls["Collections/CollectionExists"] == 1
    assert stats.calls["Collections/Create"] == 1
    assert stats.calls["Points/Upsert"] == write_counter(result, "requests")
    assert stats.errors == []
    assert sum(rest.stats.requests.values()) == 0  # nothing the sink did went over REST

    client = grpc_server.client(timeout=5)
    try:
        assert client.count(SCHEMA.name, exact=True).count == 500
        info = client.get_collection(SCHEMA.name)
        assert info.config.params.vectors["dense"].size == DIM
        assert info.config.params.sparse_vectors["sparse"].modifier == models.Modifier.IDF
        (got,) = client.retrieve(SCHEMA.name, [321], with_vectors=True)
    finally:
        client.close()
    want = make_point(321)
    dense = np.asarray(want.vector["dense"])  # Cosine: stored normalised
    np.testing.assert_allclose(got.vector["dense"], dense / np.linalg.norm(dense), atol=1e-6)
    assert got.vector["sparse"].indices == want.vector["sparse"].indices
    np.testing.assert_allclose(got.vector["sparse"].values, want.vector["sparse"].values, atol=1e-6)
    assert got.payload == want.payload
    with rest.lock:  # the same data, seen through the REST server's backend
        assert rest.local.count(SCHEMA.name).count == 500


def test_wrong_dimension_point_is_bisected_to_dead_letters(
    rest: QdrantTestServer, grpc_server: QdrantGrpcTestServer, target: QdrantTarget
) -> None:
    client = grpc_server.client()
    try:
        SCHEMA.create(client)  # exists already: the sink checks it with Collections/Get
    finally:
        client.close()
    grpc_server.reset()

    out, result = write(target, 500, bad=frozenset({321}), upsert_batch_size=64)

    (dead,) = out["dead_letters"]
    assert dead.record.id == 321 and dead.stage == "write" and dead.attempts == 1
    assert dead.error_type == "RejectedPoints"
    assert dead.message.startswith("gRPC INVALID_ARGUMENT: Wrong input: Vector dimension error")
    assert dead.message.endswith(f"expected dim: {DIM}, got {DIM - 1}")  # the engine's words
    written = sorted(pid for batch in out["written"] for pid in batch.ids)
    assert written == [i for i in range(500) if i != 321]
    assert write_counter(result, "bisections") == 6  # 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1
    assert write_counter(result, "dead_letters") == 1
    stats = grpc_server.stats
    assert stats.calls["Collections/Get"] == 1 and stats.calls["Collections/Create"] == 0
    assert stats.codes[("Points/Upsert", "INVALID_ARGUMENT")] == 7  # the batch and 6 halves
    with rest.lock:
        assert rest.local.count(SCHEMA.name).count == 499


def test_grpc_server_round_trips_named_dense_sparse_and_multi_vectors(
    rest: QdrantTestServer, grpc_server: QdrantGrpcTestServer
) -> None:
    client = grpc_server.client(timeout=5)
    try:
        assert client.info().version == grpc_server.version
        assert not client.collection_exists("multi")
        client.create_collection(
            "multi",
            vectors_config={
                "dense": models.VectorParams(size=4, distance=models.Distance.DOT),
                "colbert": models.VectorParams(
                    size=2,
                    distance=models.Distance.DOT,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                ),
            },
            sparse_vectors_config={"bm25": models.SparseVectorParams()},
        )
        client.create_payload_index("multi", "tag", models.PayloadSchemaType.KEYWORD)
        points = [
            models.PointStruct(
                id=i,
                vector={
                    "dense": [1.0, 2.0, 3.0, float(i)],
                    "colbert": [[1.0, float(i)], [0.5, 0.25], [2.0, 0.0]],
                    "bm25": models.SparseVector(indices=[i, 100 + i], values=[0.5, 1.5]),
                },
                payload={"tag": f"t{i % 3}", "n": i, "list": [1, "x", None]},
            )
            for i in range(25)
        ]
        assert client.upsert("multi", points).status == models.UpdateStatus.COMPLETED
        assert client.count("multi").count == 25
        tagged = models.Filter(
            must=[models.FieldCondition(key="tag", match=models.MatchValue(value="t1"))]
        )
        assert client.count("multi", count_filter=tagged).count == 8
        page, offset = client.scroll("multi", limit=10, offset=5, with_vectors=["colbert"])
        assert [r.id for r in page] == list(range(5, 15)) and offset == 15
        assert page[0].vector == {"colbert": [[1.0, 5.0], [0.5, 0.25], [2.0, 0.0]]}
        (record,) = client.retrieve("multi", [7], with_vectors=True)
        assert record.vector["dense"] == [1.0, 2.0, 3.0, 7.0]
        assert record.vector["bm25"] == models.SparseVector(indices=[7, 107], values=[0.5, 1.5])
        assert record.payload == {"tag": "t1", "n": 7, "list": [1, "x", None]}
        with pytest.raises(grpc.RpcError) as err:
            client.create_collection("multi", vectors_config={})
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert rest.client().count("multi").count == 25  # same backend
        assert client.delete_collection("multi")
        assert not client.collection_exists("multi")
        with pytest.raises(grpc.RpcError) as err:
            client.count("multi")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == "Not found: Collection `multi` doesn't exist!"
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_missing_collection_fails_the_batch_without_bisecting(
    protocol: str, rest: QdrantTestServer, grpc_server: QdrantGrpcTestServer
) -> None:
    target = QdrantTarget(
        url=rest.url, prefer_grpc=protocol == "grpc", grpc_port=grpc_server.port, timeout_s=1
    )
    out, result = write(target, 16, upsert_batch_size=16, manage_collection=False)
    assert len(out["dead_letters"]) == 16
    assert {d.error_type for d in out["dead_letters"]} == {"RejectedPoints"}
    assert write_counter(result, "requests") == 1
    assert write_counter(result, "bisections") == 0


def test_request_over_the_grpc_message_limit_is_split_not_retried_as_a_rate_limit() -> None:
    with QdrantGrpcTestServer(max_message_mb=1) as small:
        client = small.client()
        try:
            CollectionSchema("big", {"dense": DenseVector(1024, "Dot")}).create(client)
            rng = random.Random(0)
            points = [
                models.PointStruct(id=i, vector={"dense": [rng.random() for _ in range(1024)]})
                for i in range(400)  # ~1.6 MB of protobuf, over the server's 1 MiB
            ]
            policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.01)
            report = RetryingWriter(QdrantPointWriter(client, "big"), policy).write(points)
        finally:
            client.close()
    assert report.retries.get("rate_limited", 0) == 0
    assert len(report.written) == 400 and not report.failed
