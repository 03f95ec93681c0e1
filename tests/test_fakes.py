"""The shared parts of the fakes: the one fault model, and the in-process transport."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import httpx
import pytest
from fakes.faults import Fault, Faults, FaultState
from fakes.providers import ProviderServer
from fakes.qdrant import QdrantTestServer
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse


def _labels(state: FaultState, kind: str, n: int) -> list[str | None]:
    return [None if (f := state.draw(kind)) is None else f.label for _ in range(n)]


def test_the_script_comes_first_then_one_seeded_draw_per_in_scope_request() -> None:
    faults = Faults(error_rate=0.3, reset_rate=0.1, timeout_rate=0.1, script=[503, None], seed=5)
    state = FaultState(faults)
    assert state.draw("count") is None  # out of scope: consumes neither script nor RNG
    first = _labels(state, "upsert", 200)
    assert first[:2] == ["503", None]
    assert _labels(FaultState(faults), "embed", 200) == first  # same seed, same sequence
    state.reload()
    assert _labels(state, "upsert", 200) == first
    counts = Counter(first[2:])
    assert set(counts) == {None, "429", "500", "502", "503", "reset", "timeout"}
    assert 30 <= counts["reset"] + counts["timeout"] <= 50  # 20 % of 198
    jittery = FaultState(dataclasses.replace(faults, latency_jitter_s=0.5))
    interleaved = []
    for _ in range(200):
        jittery.latency("upsert")  # the jitter has its own RNG: the faults stay the same
        interleaved.append(None if (f := jittery.draw("upsert")) is None else f.label)
    assert interleaved == first


def test_status_weights_scope_and_per_kind_rates() -> None:
    state = FaultState(Faults(error_rate=1.0, error_statuses={429: 3, 500: 1}, seed=1))
    counts = Counter(_labels(state, "upsert", 400))
    assert set(counts) == {"429", "500"}
    assert 2.0 < counts["429"] / counts["500"] < 4.5
    per_kind = FaultState(Faults(kinds=None, error_rate={"scroll": 1.0, "*": 0.0}))
    assert per_kind.draw("scroll") is not None
    assert per_kind.draw("count") is None
    assert FaultState(Faults(kinds=frozenset({"count"}), error_rate=1.0)).draw("upsert") is None


def test_latency_and_jitter_apply_in_scope_only() -> None:
    state = FaultState(Faults(latency_s=0.1, latency_jitter_s=0.05))
    waits = [state.latency("embed") for _ in range(20)]
    assert all(0.1 <= w <= 0.15 for w in waits) and len(set(waits)) > 1
    assert state.latency("count") == 0.0


def test_retry_after_and_rate_limit_headers() -> None:
    faults = Faults(
        retry_after_s=1.0,
        retry_after_on={429, 503},
        rate_limit_headers={"x-ratelimit-reset-requests": "6m0s"},
    )
    assert faults.headers_for(Fault(429)) == [
        ("Retry-After", "1"),
        ("x-ratelimit-reset-requests", "6m0s"),
    ]
    assert faults.headers_for(Fault(500)) == []
    assert faults.headers_for(Fault(500, retry_after_s=0.5)) == [("Retry-After", "0.5")]
    assert faults.headers_for(Fault(429, retry_after_s=None)) == [
        ("x-ratelimit-reset-requests", "6m0s")
    ]
    assert Faults(retry_after_s=None).headers_for(Fault(429)) == []


def test_script_items_are_validated_and_survive_json() -> None:
    assert Fault.coerce(200) is None and Fault.coerce(None) is None
    assert Fault.coerce(429) == Fault(429)
    assert Fault.coerce("reset") == Fault(reset=True)
    for bad in (True, "boom", 99, 700, 3.5):
        with pytest.raises(ValueError):
            Fault.coerce(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Fault(429, reset=True)
    with pytest.raises(ValueError):
        Faults(error_statuses=())
    faults = Faults(
        kinds=frozenset({"embed"}),
        error_rate=0.2,
        error_statuses={429: 2, 500: 1},
        script=[429, None, "timeout", Fault(500, apply=True), Fault(503, retry_after_s=2)],
        rate_limit_headers={"x-ratelimit-reset-requests": "1s"},
        seed=9,
    )
    assert Faults.from_json(faults.to_json()) == faults
    assert Fault(500, apply=True).label == "500+apply"


def test_the_transport_serves_in_process_and_raises_the_drops() -> None:
    server = ProviderServer("openai", faults=Faults(script=["reset", "timeout", 429]))
    body = {"model": "text-embedding-3-small", "input": ["a"]}
    with httpx.Client(transport=server.transport()) as client:
        with pytest.raises(httpx.ReadError):
            client.post(server.endpoint, json=body)
        with pytest.raises(httpx.ReadTimeout):
            client.post(server.endpoint, json=body)
        r = client.post(server.endpoint, json=body)
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
        assert client.post(server.endpoint, json=body).status_code == 200
    assert [r.fault for r in server.requests] == ["reset", "timeout", "429", None]
    assert server.in_flight == 0 and server.max_concurrent_seen == 1


def test_the_qdrant_fake_in_process() -> None:
    server = QdrantTestServer(faults=Faults(kinds=None, script=[Fault(503, retry_after_s=3)]))
    try:
        with httpx.Client(base_url=server.url, transport=server.transport()) as client:
            r = client.get("/collections")
            assert (r.status_code, r.headers["retry-after"]) == (503, "3")
            assert r.json()["status"]["error"].startswith("Service unavailable")
            assert client.get("/collections").json()["result"] == {"collections": []}
        assert server.stats.faults == {"503": 1}
    finally:
        server.close()


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ({"a": [0.1, 0.2, 0.3]}, "Wrong input: Vector dimension error: expected dim: 4, got 3"),
        ({"b": [0.1, 0.2, 0.3, 0.4]}, "Wrong input: Not existing vector name error: b"),
        ({"s": [0.1, 0.2]}, "Wrong input: Wrong usage of sparse vectors"),
        (
            {"a": models.SparseVector(indices=[1], values=[0.5])},
            "Wrong input: Wrong usage of sparse vectors",
        ),
    ],
)
def test_the_fake_refuses_points_with_qdrant_engines_own_message(
    vector: dict[str, Any], message: str
) -> None:
    """What Qdrant's engine (qdrant-edge) says, not local mode's paraphrase; nothing is stored."""
    with QdrantTestServer() as server:
        client = server.client()
        try:
            client.create_collection(
                "x",
                vectors_config={"a": models.VectorParams(size=4, distance=models.Distance.COSINE)},
                sparse_vectors_config={"s": models.SparseVectorParams()},
            )
            good = models.PointStruct(id=1, vector={"a": [0.1, 0.2, 0.3, 0.4]})
            with pytest.raises(UnexpectedResponse) as refused:
                client.upsert("x", [good, models.PointStruct(id=2, vector=vector)])
            assert refused.value.status_code == 400
            assert refused.value.structured()["status"]["error"] == message
            assert client.count("x", exact=True).count == 0
        finally:
            client.close()
