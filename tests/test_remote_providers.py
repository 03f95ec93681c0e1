"""Remote providers against the provider fakes: request shapes, dedup, MRL from one call,
images, retries, isolation of a bad input, dimension checks, secrets, the concurrency cap, a
soak under faults, and the server-side inference mode.

Request shapes, error bodies and decoding go through ``ProviderServer.transport()`` (the fake's
handler in process, no socket: ``RemoteClient(transport=...)``); timeouts, the concurrency cap,
the pipelines and the soak go over real loopback sockets.
"""

from __future__ import annotations

import base64
import io
import logging
import pickle
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import httpx
import numpy as np
import pytest
from apache_beam.transforms.display import DisplayData
from conftest import counter, resolve_points, run_collect
from fakes.faults import Fault
from fakes.providers import Faults, ProviderServer, expected_vector, spawn_server
from fakes.qdrant import QdrantTestServer
from PIL import Image
from qdrant_client import models

from qdrant_beam.connectors import FakeClock, QdrantTarget, WriteToQdrant
from qdrant_beam.io.errors import AuthError
from qdrant_beam.pipelines.dead_letter_sink import dead_letter_json
from qdrant_beam.transforms import EmbedPoints, ResolveInference, load_spec
from qdrant_beam.transforms.backends.providers import PROVIDERS, ProviderConfig
from qdrant_beam.transforms.backends.remote import RemoteClient, parse_reset, redact
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.engine import InferenceEngine
from qdrant_beam.transforms.store import ModelStore

KEY = "sk-test-0123456789abcdef"
SENTINEL = "sk-SENTINEL-5b1e9c7d2f40a8c3"
OPENAI_MODEL = "openai/text-embedding-3-small"


def fast_config(server: ProviderServer, **overrides: Any) -> ProviderConfig:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "timeout_s": 2.0,
        "initial_backoff_s": 0.01,
        "max_backoff_s": 0.05,
        "max_retry_after_s": 0.05,
        "max_attempts": 20,
        **overrides,
    }
    return ProviderConfig(**values)


def make_engine(
    provider: str,
    config: ProviderConfig,
    clock: FakeClock | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    clients: list[RemoteClient] | None = None,
) -> InferenceEngine:
    """An engine whose remote clients use ``clock`` and ``transport`` (``None``: a socket);
    each client made is appended to ``clients``."""

    def factory(p: Any, c: ProviderConfig, key: str | None) -> RemoteClient:
        client = RemoteClient(p, c, key, clock=clock or FakeClock(), transport=transport)
        if clients is not None:
            clients.append(client)
        return client

    store = ModelStore(ModelCatalog(), providers={provider: config}, remote_factory=factory)
    return InferenceEngine(store)


def in_process(provider: str, server: ProviderServer, **overrides: Any) -> InferenceEngine:
    """An engine talking to ``server`` through its in-process transport (no socket)."""
    return make_engine(provider, fast_config(server, **overrides), transport=server.transport())


def doc(text: str, model: str = OPENAI_MODEL, **options: Any) -> models.Document:
    return models.Document(text=text, model=model, options=options or None)


def points_of(*vectors: dict[str, Any]) -> list[models.PointStruct]:
    return [models.PointStruct(id=i, vector=v) for i, v in enumerate(vectors)]


@pytest.fixture
def openai_fake(monkeypatch: pytest.MonkeyPatch) -> ProviderServer:
    """The OpenAI fake, not started: reach it with ``in_process``."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return ProviderServer("openai", api_key=KEY)


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    """The OpenAI fake on a loopback socket."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ProviderServer("openai", api_key=KEY) as server:
        yield server


# -- request shapes -----------------------------------------------------------------------


def test_openai_request_shape_and_vectors(openai_fake: ProviderServer) -> None:
    engine = in_process("openai", openai_fake, encoding="base64")
    done, failed = resolve_points(
        engine, points_of({"v": doc("alpha", dimensions=256)}, {"v": doc("beta", dimensions=256)})
    )
    assert not failed
    (request,) = openai_fake.requests
    assert request.body == {
        "model": "text-embedding-3-small",
        "input": ["alpha", "beta"],
        "encoding_format": "base64",
        "dimensions": 256,
    }
    assert request.auth_ok
    assert request.headers["content-type"] == "application/json"
    expected = openai_fake.expected("text-embedding-3-small", "beta", 256)
    assert done[1].vector["v"] == pytest.approx(expected, abs=1e-6)


def test_openrouter_sends_the_vendor_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    server = ProviderServer("openrouter", api_key=KEY)
    engine = in_process("openrouter", server)
    model = "openrouter/openai/text-embedding-3-small"
    done, failed = resolve_points(engine, points_of({"v": doc("hello", model)}))
    assert not failed
    assert server.requests[0].path == "/api/v1/embeddings"
    assert server.requests[0].body == {
        "model": "openai/text-embedding-3-small",
        "input": ["hello"],
        "encoding_format": "float",  # an overridden base URL gets floats by default
    }
    expected = server.expected("openai/text-embedding-3-small", "hello")
    assert done[0].vector["v"] == pytest.approx(expected, abs=1e-6)


def test_cohere_request_shape_query_and_passage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    server = ProviderServer("cohere", api_key=KEY)
    engine = in_process("cohere", server)
    model = "cohere/embed-v4.0"
    done, failed = resolve_points(
        engine,
        points_of(
            {"d": doc("a passage", model, output_dimension=512)},
            {"q": doc("a query", model, output_dimension=512, input_type="query")},
        ),
    )
    assert not failed
    assert {r.path for r in server.requests} == {"/v2/embed"}
    bodies = sorted((r.body for r in server.requests), key=lambda b: b["input_type"])
    assert bodies == [
        {
            "model": "embed-v4.0",
            "input_type": "search_document",
            "embedding_types": ["float"],
            "texts": ["a passage"],
            "output_dimension": 512,
        },
        {
            "model": "embed-v4.0",
            "input_type": "search_query",
            "embedding_types": ["float"],
            "texts": ["a query"],
            "output_dimension": 512,
        },
    ]
    assert done[1].vector["q"] == pytest.approx(
        server.expected("embed-v4.0", "a query", 512), abs=1e-6
    )


def test_jina_request_shape_with_task_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JINA_API_KEY", KEY)
    server = ProviderServer("jinaai", api_key=KEY)
    engine = in_process("jinaai", server, encoding="base64")
    model = "jinaai/jina-embeddings-v3"
    done, failed = resolve_points(
        engine, points_of({"v": doc("text one", model, dimensions=128, late_chunking=False)})
    )
    assert not failed
    assert server.requests[0].body == {
        "model": "jina-embeddings-v3",
        "input": ["text one"],
        "embedding_type": "base64",
        "task": "retrieval.passage",
        "dimensions": 128,
        "late_chunking": False,
    }
    assert done[0].vector["v"] == pytest.approx(
        server.expected("jina-embeddings-v3", "text one", 128), abs=1e-6
    )


def png_bytes(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def test_cohere_gets_images_as_data_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    data = png_bytes()
    server = ProviderServer("cohere", api_key=KEY)
    engine = in_process("cohere", server)
    image = models.Image(image=data, model="cohere/embed-english-v3.0")
    done, failed = resolve_points(engine, points_of({"img": image}))
    assert not failed
    body = server.requests[0].body
    data_url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert body["images"] == [data_url] and body["input_type"] == "image"
    assert "texts" not in body
    assert done[0].vector["img"] == pytest.approx(
        server.expected("embed-english-v3.0", data_url), abs=1e-6
    )


def test_jina_gets_image_urls_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JINA_API_KEY", KEY)
    url = "https://images.example.com/cat.png"
    server = ProviderServer("jinaai", api_key=KEY)
    engine = in_process("jinaai", server)
    model = "jinaai/jina-clip-v2"
    done, failed = resolve_points(
        engine,
        points_of({"img": models.Image(image=url, model=model), "txt": doc("a cat", model)}),
    )
    assert not failed
    inputs = sorted(str(r.body["input"]) for r in server.requests)
    assert inputs == [str([{"image": url}]), str([{"text": "a cat"}])]
    assert done[0].vector["img"] == pytest.approx(server.expected("jina-clip-v2", url), abs=1e-6)


# -- dedup and MRL ------------------------------------------------------------------------


def test_identical_inputs_are_sent_once_and_mrl_comes_from_the_same_call(
    openai_fake: ProviderServer,
) -> None:
    engine = in_process("openai", openai_fake)
    texts = ["red", "green", "red", "blue", "green", "red"]
    batch = points_of(
        *({"full": doc(t, dimensions=512), "small": doc(t, dimensions=512, mrl=64)} for t in texts)
    )
    done, failed = resolve_points(engine, batch)
    assert not failed
    stats = openai_fake.stats()
    assert stats["requests"] == 1 and stats["inputs_received"] == 3
    full = np.asarray(done[0].vector["full"])
    small = np.asarray(done[0].vector["small"])
    assert small.shape == (64,)
    np.testing.assert_allclose(small, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)


def test_inputs_are_batched_to_the_provider_limits(openai_fake: ProviderServer) -> None:
    engine = in_process("openai", openai_fake, max_inputs=7)
    done, failed = resolve_points(engine, points_of(*({"v": doc(f"text {i}")} for i in range(20))))
    assert not failed and len(done) == 20
    sizes = sorted(len(r.body["input"]) for r in openai_fake.requests)
    assert sizes == [6, 7, 7]
    client = RemoteClient(PROVIDERS["cohere"], ProviderConfig(), KEY)
    from qdrant_beam.transforms.backends.providers import RemoteInput

    assert [len(c) for c in client.chunks([RemoteInput("text", "x")] * 200)] == [96, 96, 8]
    huge = [RemoteInput("text", "x", tokens=200_000)] * 3
    openai = RemoteClient(PROVIDERS["openai"], ProviderConfig(), KEY)
    assert [len(c) for c in openai.chunks(huge)] == [1, 1, 1]  # 300k-token request budget
    client.close()
    openai.close()


# -- failures -----------------------------------------------------------------------------


def test_429_500_and_timeouts_are_retried_honouring_retry_after(
    openai_server: ProviderServer,
) -> None:
    """Over a socket: the timeout is the client's own 0.3 s read timeout."""
    openai_server.faults = Faults(
        script=[429, 500, "timeout", 503, None],
        retry_after_s="7",
        retry_after_on={429, 503},
        hold_s=1.0,
    )
    clock = FakeClock()
    config = fast_config(openai_server, timeout_s=0.3, max_retry_after_s=30)
    engine = make_engine("openai", config, clock)
    done, failed = resolve_points(engine, points_of({"v": doc("patient")}))
    assert not failed and len(done) == 1
    assert clock.slept[0] == 7.0  # Retry-After, within the cap
    assert len(clock.slept) == 4
    assert openai_server.stats()["resent_after_success"] == 0
    assert [r.fault for r in openai_server.requests] == ["429", "500", "timeout", "503", None]


def test_retry_after_is_capped_and_reset_headers_are_read(openai_fake: ProviderServer) -> None:
    """A Retry-After of 30 s waits the configured 2 s at most; without Retry-After, OpenAI's
    ``x-ratelimit-reset-requests`` says how long to wait."""
    openai_fake.faults = Faults(
        script=[429, Fault(429, retry_after_s=None)],
        retry_after_s=30,
        rate_limit_headers={"x-ratelimit-reset-requests": "1.5s"},
    )
    clock = FakeClock()
    config = fast_config(openai_fake, max_retry_after_s=2.0)
    engine = make_engine("openai", config, clock, transport=openai_fake.transport())
    done, failed = resolve_points(engine, points_of({"v": doc("patient")}))
    assert not failed and len(done) == 1
    assert clock.slept == [2.0, 1.5]  # capped Retry-After, then the reset header
    assert parse_reset("6m0s") == 360.0
    assert parse_reset("20ms") == pytest.approx(0.02)
    assert parse_reset("1.5") == 1.5
    assert parse_reset("nonsense") is None


def test_requests_in_flight_never_exceed_the_concurrency_maximum(
    openai_server: ProviderServer,
) -> None:
    """Twelve one-input requests on a pool of four threads, through a window of two: the
    limiter holds the third back, and the server (which would answer 503 over two) never sees
    more than two at once."""
    openai_server.faults = Faults(latency_s=0.05, max_concurrent=2)
    clients: list[RemoteClient] = []
    config = fast_config(
        openai_server, max_inputs=1, concurrency={"initial": 2, "minimum": 1, "maximum": 2}
    )
    engine = make_engine("openai", config, clients=clients)
    done, failed = resolve_points(engine, points_of(*({"v": doc(f"t{i}")} for i in range(12))))
    assert not failed and len(done) == 12
    (client,) = clients
    assert client.limiter.max_in_flight_seen == 2
    assert openai_server.max_concurrent_seen == 2
    stats = openai_server.stats()
    assert stats["requests"] == 12 and "over_cap" not in stats["faults"]


def test_a_rejected_input_is_isolated_by_splitting(openai_fake: ProviderServer) -> None:
    openai_fake.poison = "POISON"
    engine = in_process("openai", openai_fake)
    texts = [f"fine text {i}" for i in range(7)] + ["this one is POISON"]
    done, failed = resolve_points(engine, points_of(*({"v": doc(t)} for t in texts)))
    assert len(done) == 7 and len(failed) == 1
    assert failed[0].record.id == 7
    assert "openai rejected this input" in failed[0].message
    assert "input" in failed[0].message  # the provider's own message is kept


def test_a_wrong_dimension_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    bad = ProviderServer("openai", api_key=KEY, wrong_dim={"text-embedding-3-small": 100})
    engine = in_process("openai", bad)
    done, failed = resolve_points(engine, points_of({"v": doc("x", dimensions=256)}))
    assert not done and failed[0].error_type == "VectorSizeMismatch"
    assert "returned 100 dimensions where 256 are expected" in failed[0].message


def test_a_refused_key_fails_loudly_without_showing_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    server = ProviderServer("openai", api_key=KEY, echo_key_in_errors=True)
    engine = in_process("openai", server)
    with pytest.raises(AuthError) as err:
        resolve_points(engine, points_of({"v": doc("x")}))
    assert server.stats()["requests_by_status"] == {"401": 1}  # the key was sent, and refused
    assert SENTINEL not in str(err.value) and SENTINEL[:8] not in str(err.value)
    assert "OPENAI_API_KEY" in str(err.value)


def test_a_missing_key_names_the_variable() -> None:
    server = ProviderServer("openai")
    engine = in_process("openai", server)
    with pytest.raises(AuthError, match="OPENAI_API_KEY"):
        resolve_points(engine, points_of({"v": doc("x")}))
    assert server.requests == []  # refused before sending


def test_redact_removes_echoed_prefixes() -> None:
    assert redact(f"Incorrect API key provided: {SENTINEL[:10]}***", SENTINEL) == (
        "Incorrect API key provided: <redacted>"
    )


def test_a_per_object_key_is_used_and_scrubbed_from_dead_letters() -> None:
    server = ProviderServer("openai", api_key=SENTINEL, poison="POISON")
    engine = in_process("openai", server)
    key = {"openai-api-key": SENTINEL}
    done, failed = resolve_points(
        engine, points_of({"v": doc("good", **key)}, {"v": doc("POISON", **key)})
    )
    assert len(done) == 1 and len(failed) == 1
    assert all(r.auth_ok for r in server.requests)  # the object's key reached the provider
    assert SENTINEL not in repr(failed[0]) and SENTINEL not in dead_letter_json(failed[0])
    assert failed[0].record.vector["v"].options["openai-api-key"] == "<redacted>"


# -- pipelines ----------------------------------------------------------------------------


def remote_spec(server: ProviderServer, **provider: Any) -> Any:
    return load_spec(
        {
            "collection": "remote",
            "id": "{id}",
            "payload": {"include": ["id", "text"]},
            "vectors": {
                "dense": {"text": "{text}", "model": OPENAI_MODEL, "options": {"dimensions": 256}},
                "dense_32": {
                    "text": "{text}",
                    "model": OPENAI_MODEL,
                    "options": {"dimensions": 256, "mrl": 32},
                },
            },
            "providers": {"openai": {**fast_config(server).model_dump(), **provider}},
        }
    )


def test_embed_points_dead_letter_carries_the_point_and_duplicates_own_their_lists(
    openai_server: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fused map-and-embed step builds points from mapped records: a rejected input's
    dead letter still carries the point with its inference objects, as RecordsToPoints made
    it, and two records with the same text get equal vectors in separate lists."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    openai_server.poison = "POISON"
    spec = remote_spec(openai_server)
    records = [
        {"id": 1, "text": "same text", "extra": "dropped"},
        {"id": 2, "text": "same text"},
        {"id": 3, "text": "this one is POISON"},
    ]
    out, _ = run_collect(lambda p: p | beam.Create(records) | EmbedPoints(spec))
    points = {p.id: p for p in out["points"]}
    assert sorted(points) == [1, 2]
    one, two = points[1].vector, points[2].vector
    assert one["dense"] == two["dense"] and one["dense"] is not two["dense"]
    assert len(one["dense_32"]) == 32 and one["dense_32"] is not two["dense_32"]
    assert points[1].payload == {"id": 1, "text": "same text"}
    assert points[1].model_fields_set == {"id", "vector", "payload"}
    [dead] = out["dead_letters"]
    assert dead.stage == "inference" and "openai rejected this input" in dead.message
    point = dead.record
    assert isinstance(point, models.PointStruct) and point.id == 3
    assert point.payload == {"id": 3, "text": "this one is POISON"}
    assert point.vector["dense"] == models.Document(
        text="this one is POISON", model=OPENAI_MODEL, options={"dimensions": 256}
    )
    assert point.vector["dense_32"].options == {"dimensions": 256, "mrl": 32}
    assert point.vector["dense"].options is not point.vector["dense_32"].options


def test_soak_5000_inputs_at_a_20_percent_fault_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server runs in its own process: in this one, the pipeline's threads would hold the
    GIL long enough to make honest answers late, and a late answer is a client timeout."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    faults = Faults(  # 8 % 429, 8 % 500, 4 % timeouts
        error_rate=0.16,
        error_statuses=(429, 500),
        timeout_rate=0.04,
        retry_after_s="0",
        hold_s=2.0,
        seed=3,
    )
    with spawn_server("openai", api_key=KEY, faults=faults) as server:
        spec = remote_spec(server, max_inputs=50, timeout_s=1.0, max_concurrency=4)  # type: ignore[arg-type]
        records = [{"id": i, "text": f"soak text number {i}"} for i in range(5_000)]
        out, result = run_collect(
            lambda p: p | beam.Create(records) | EmbedPoints(spec, batch_size=250)
        )
        stats = server.stats()
    assert len(out["points"]) == 5_000 and out["dead_letters"] == []
    assert stats["resent_after_success"] == 0
    assert stats["unique_inputs_succeeded"] == 5_000
    assert sum(stats["faults"].values()) >= 0.15 * stats["requests"]
    sample = {p.id: p for p in out["points"]}[4321]
    expected = expected_vector(
        "openai", "text-embedding-3-small", "soak text number 4321", 256, 1536
    )
    assert sample.vector["dense"] == pytest.approx(expected, abs=1e-6)
    assert counter(result, "remote_retries") > 0
    assert counter(result, "remote_tokens") > 0
    assert counter(result, "remote_inputs_sent") >= 5_000


def test_remote_specs_batch_1024_records_by_default(openai_server: ProviderServer) -> None:
    """1,000 unique texts: one batch, so one request (the limit is 2,048 inputs); with the
    local default of 256 points per batch they would take four."""
    spec = remote_spec(openai_server)
    records = [{"id": i, "text": f"batched text {i}"} for i in range(1_000)]
    out, _ = run_collect(lambda p: p | beam.Create(records) | EmbedPoints(spec))
    assert len(out["points"]) == 1_000
    assert openai_server.stats()["requests"] == 1
    openai_server.reset()
    out, _ = run_collect(lambda p: p | beam.Create(records) | EmbedPoints(spec, batch_size=256))
    assert len(out["points"]) == 1_000
    assert openai_server.stats()["requests"] == 4


def test_secret_sentinel_never_leaves_the_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    """The key reaches the provider, and nothing else: logs, dead letters, payloads, errors,
    display data and the pickled pipeline are grepped for it."""
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    caplog.set_level(logging.DEBUG)
    with (
        ProviderServer("openai", api_key=SENTINEL, echo_key_in_errors=True) as provider,
        QdrantTestServer() as qdrant,
    ):
        provider.poison = "POISON"
        provider.faults = Faults(script=[429, 500])
        spec = remote_spec(provider)
        records = [{"id": i, "text": f"doc {i}"} for i in range(30)] + [
            {"id": 99, "text": "POISON pill"}
        ]
        target = QdrantTarget(url=qdrant.url)
        transforms: list[beam.PTransform] = []

        def build(p: beam.Pipeline) -> dict[str, Any]:
            embed = EmbedPoints(spec, batch_size=16)
            write = WriteToQdrant(target, spec=spec)
            transforms.extend([embed, write])
            points, dead = p | beam.Create(records) | embed
            written, write_dead = points | write
            graph = p.to_runner_api().SerializeToString()
            (tmp_path / "graph.bin").write_bytes(graph + pickle.dumps(transforms))
            return {"dead": dead, "written": written, "write_dead": write_dead}

        out, _ = run_collect(build)
        stored, _ = qdrant.client().scroll("remote", limit=100, with_payload=True)
        assert provider.stats()["inputs_succeeded"] >= 30
    assert len(stored) == 30 and len(out["dead"]) == 1
    haystack = [
        caplog.text,
        repr(out),
        "\n".join(dead_letter_json(d) for d in out["dead"]),
        repr([s.payload for s in stored]),
        repr([DisplayData.create_from(t).items for t in transforms]),
    ]
    for text in haystack:
        assert SENTINEL not in text and SENTINEL[:10] not in text
    assert SENTINEL.encode() not in (tmp_path / "graph.bin").read_bytes()


def test_server_side_inference_sends_objects_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    def embed(obj: Any) -> list[float]:
        seed = sum(obj.text.encode()) if isinstance(obj, models.Document) else 1
        rng = np.random.default_rng(seed)
        vec = rng.normal(size=256)
        return (vec / np.linalg.norm(vec)).tolist()

    with QdrantTestServer(inference=embed) as qdrant:
        spec = load_spec(
            {
                "collection": "cloud",
                "id": "{id}",
                "vectors": {
                    "dense": {
                        "text": "{text}",
                        "model": OPENAI_MODEL,
                        "options": {"dimensions": 256},
                    }
                },
            }
        )
        records = [{"id": i, "text": ["same", "other"][i % 2]} for i in range(10)]
        records.append({"id": 50, "text": "   "})
        target = QdrantTarget(url=qdrant.url)
        out, _ = run_collect(
            lambda p: {
                "embed": (
                    embedded := p | beam.Create(records) | EmbedPoints(spec, inference="server")
                ).dead_letters,
                "written": (
                    embedded.points
                    | WriteToQdrant(target, spec=spec, inference="server", upsert_batch_size=10)
                ).written,
            }
        )
        stats = qdrant.stats
        stored, _ = qdrant.client().scroll("cloud", limit=20, with_vectors=True)
    assert len(stored) == 10 and len(out["embed"]) == 1
    assert stats.inference_objects == 10 and stats.inference_computed == 2
    assert stored[0].vector["dense"] == pytest.approx(embed(doc(stored[0].payload["text"])))


def test_server_side_inference_needs_a_server() -> None:
    spec = load_spec(
        {"collection": "c", "id": "{id}", "vectors": {"v": {"text": "{t}", "model": OPENAI_MODEL}}}
    )
    with pytest.raises(Exception, match="server-side inference needs a Qdrant server"):
        WriteToQdrant(QdrantTarget(location=":memory:"), spec=spec, inference="server")


def test_resolve_inference_validates_provider_names() -> None:
    with pytest.raises(Exception, match="unknown provider"):
        ResolveInference(providers={"acme": {}})
