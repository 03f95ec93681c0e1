"""One batch against the REST test server: retries, Retry-After, bisection, error mapping.

Answers decided by status and body alone go through ``server.transport()`` (in process, no
socket); resets and timeouts go over a real socket.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Listener
from fakes.qdrant import Fault, Faults, QdrantTestServer
from qdrant_client import models

from qdrant_beam.connectors import CollectionSchema, DenseVector, FakeClock, RetryPolicy
from qdrant_beam.connectors.collection import SparseVector
from qdrant_beam.connectors.qdrant_errors import RejectedPoints, translate_errors
from qdrant_beam.connectors.writer import QdrantPointWriter, RetryingWriter
from qdrant_beam.io.errors import AuthError, RateLimited, Timeout, Unavailable

SCHEMA = CollectionSchema(
    "docs", {"dense": DenseVector(4), "small": DenseVector(2)}, {"sparse": SparseVector("idf")}
)


def point(pid: int, dim: int = 4) -> models.PointStruct:
    return models.PointStruct(
        id=pid,
        vector={
            "dense": [0.1 * (pid + 1)] * dim,
            "small": [1.0, 0.0],
            "sparse": models.SparseVector(indices=[pid, 1000 + pid], values=[1.0, 0.5]),
        },
        payload={"n": pid},
    )


@pytest.fixture(scope="module")
def server() -> Iterator[QdrantTestServer]:
    with QdrantTestServer() as srv:
        yield srv


@pytest.fixture
def client(server: QdrantTestServer) -> Iterator[Any]:
    """Over a loopback socket."""
    server.reset()
    client = server.client(timeout=1)
    SCHEMA.create(client)
    yield client
    client.close()


@pytest.fixture
def mock_client(server: QdrantTestServer) -> Iterator[Any]:
    """Through the server's in-process transport: no socket."""
    server.reset()
    client = server.client(timeout=1, transport=server.transport())
    SCHEMA.create(client)
    yield client
    client.close()


def writer(client: Any, clock: FakeClock, **policy: Any) -> tuple[RetryingWriter, Listener]:
    listener = Listener()
    retrying = RetryingWriter(
        QdrantPointWriter(client, "docs"),
        RetryPolicy(**{"initial_backoff_s": 0.5, **policy}),
        clock=clock,
        rng=random.Random(0),
        listener=listener,
    )
    return retrying, listener


def test_transient_errors_are_retried_with_backoff_and_retry_after(
    server: QdrantTestServer, client: Any
) -> None:
    clock = FakeClock()
    retrying, listener = writer(client, clock, max_retry_after_s=5.0)
    server.push_script(Fault(429, retry_after_s=7), 503, 500, "reset")
    report = retrying.write([point(i) for i in range(10)])
    assert report.written == list(range(10)) and not report.failed
    assert report.requests == 5
    assert report.retries == {"rate_limited": 1, "http_503": 1, "http_500": 1, "connection": 1}
    assert clock.slept[0] == 5.0  # Retry-After 7 s, capped at 5 s
    assert all(0 <= s <= 0.5 * 2**n for n, s in enumerate(clock.slept[1:], start=1))
    assert report.throttled_s == pytest.approx(clock.slept[0] + clock.slept[1])
    assert listener.events == ["throttle", "throttle", "success"]
    assert client.count("docs").count == 10


def test_exhausted_retries_fail_the_batch_with_attempts(
    server: QdrantTestServer, mock_client: Any
) -> None:
    retrying, _ = writer(mock_client, FakeClock(), max_attempts=3)
    server.push_script(503, 503, 503)
    report = retrying.write([point(1), point(2)])
    assert report.written == []
    assert [(p.id, type(e).__name__, n) for p, e, n in report.failed] == [
        (1, "Unavailable", 3),
        (2, "Unavailable", 3),
    ]


def test_deadline_stops_retries(server: QdrantTestServer, mock_client: Any) -> None:
    clock = FakeClock()
    retrying, _ = writer(mock_client, clock, deadline_s=4.0, max_retry_after_s=3.0)
    server.push_script(Fault(429, retry_after_s=3), Fault(429, retry_after_s=3))
    report = retrying.write([point(1)])
    assert report.requests == 2 and clock.slept == [3.0]
    assert isinstance(report.failed[0][1], RateLimited)


def test_timeout_is_retried_and_signals_throttle(server: QdrantTestServer, client: Any) -> None:
    server.faults = Faults(hold_s=3.0)
    server.push_script("timeout")
    retrying, listener = writer(client, FakeClock())
    report = retrying.write([point(1)])
    assert report.written == [1] and report.retries == {"timeout": 1}
    assert listener.events == ["throttle", "success"]


def test_poisoned_batch_is_bisected_and_only_the_bad_point_fails(
    server: QdrantTestServer, mock_client: Any
) -> None:
    client = mock_client
    points = [point(i) for i in range(16)]
    points[11] = point(11, dim=3)  # wrong dimension
    retrying, _ = writer(client, FakeClock())
    report = retrying.write(points)
    assert sorted(report.written) == [i for i in range(16) if i != 11]
    ((bad, error, attempts),) = report.failed
    assert bad.id == 11 and attempts == 1
    assert isinstance(error, RejectedPoints) and error.status_code == 400
    assert "expected dim: 4, got 3" in str(error)
    assert report.bisections >= 4
    assert client.count("docs").count == 15


def test_applied_then_failed_write_is_idempotent(server: QdrantTestServer, client: Any) -> None:
    server.push_script(Fault(500, apply=True), Fault(reset=True, apply=True))
    retrying, _ = writer(client, FakeClock())
    report = retrying.write([point(i) for i in range(5)])
    assert report.requests == 3 and report.written == list(range(5))
    assert client.count("docs").count == 5  # retried twice, stored once


def test_missing_collection_fails_the_whole_batch_without_bisecting(
    server: QdrantTestServer,
) -> None:
    server.reset()
    client = server.client(timeout=1, transport=server.transport())
    retrying, _ = writer(client, FakeClock())
    report = retrying.write([point(i) for i in range(8)])
    assert report.requests == 1 and len(report.failed) == 8
    assert "doesn't exist" in str(report.failed[0][1])


def test_error_translation(server: QdrantTestServer, client: Any) -> None:
    cases = [
        (Fault(429, retry_after_s=2), RateLimited),
        (Fault(429, retry_after_s=0.5), RateLimited),  # client refuses a fractional header
        (500, Unavailable),
        (502, Unavailable),
        ("reset", Unavailable),
    ]
    for fault, kind in cases:
        server.push_script(fault)
        with pytest.raises(kind), translate_errors():
            client.upsert("docs", points=[point(1)])
    server.faults = Faults(hold_s=3.0)
    server.push_script("timeout")
    with pytest.raises(Timeout), translate_errors():
        client.upsert("docs", points=[point(1)])


def test_auth_errors_are_permanent() -> None:
    srv = QdrantTestServer(api_key="sentinel-key")
    try:
        client = srv.client(api_key=None, transport=srv.transport())
        with pytest.raises(AuthError), translate_errors():
            client.get_collections()
        assert [r.status for r in srv.requests] == [401]
    finally:
        srv.close()
