"""The embedding-provider fakes, driven with httpx: shapes, validation, faults and stats.

Answers, validation and stats go through ``server.transport()`` (the same handler, in process,
no socket); timeouts, resets, concurrency, the harness paths and the own process use real
sockets.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fakes.providers import (
    FLAVORS,
    Faults,
    ProviderServer,
    count_tokens,
    expected_vector,
    model_dim,
    spawn_server,
)
from PIL import Image

KEY = "sk-test-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}

#: A minimal valid request per flavor, and the text inputs it carries.
BODIES: dict[str, dict[str, Any]] = {
    "openai": {"model": "text-embedding-3-small", "input": ["alpha beta", "gamma"]},
    "openrouter": {"model": "openai/text-embedding-3-small", "input": ["alpha beta", "gamma"]},
    "cohere": {
        "model": "embed-english-v3.0",
        "input_type": "search_document",
        "texts": ["alpha beta", "gamma"],
    },
    "jinaai": {"model": "jina-embeddings-v3", "input": ["alpha beta", "gamma"]},
}


def _png_data_url(width: int = 4, height: int = 3) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _vectors(flavor: str, doc: dict[str, Any], fmt: str = "float") -> list[list[float]]:
    """The embeddings of an answer, in index order, decoded if base64."""
    if flavor == "cohere":
        raw = doc["embeddings"][fmt]
    else:
        raw = [item["embedding"] for item in sorted(doc["data"], key=lambda d: d["index"])]
    if fmt == "base64":
        return [np.frombuffer(base64.b64decode(s), dtype="<f4").tolist() for s in raw]
    vectors: list[list[float]] = raw
    return vectors


@pytest.fixture
def server(request: pytest.FixtureRequest) -> ProviderServer:
    """Not started: ``_post`` reaches it through its in-process transport."""
    return ProviderServer(getattr(request, "param", "openai"), api_key=KEY)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """For the tests that go over real sockets."""
    with httpx.Client(timeout=5) as client:
        yield client


def _client(server: ProviderServer) -> httpx.Client:
    return httpx.Client(transport=server.transport(), timeout=5)


def _post(server: ProviderServer, body: Any, **kwargs: Any) -> httpx.Response:
    """POST to the server's endpoint in process (no socket), with the key unless told."""
    kwargs.setdefault("headers", AUTH)
    with _client(server) as client:
        return client.post(server.endpoint, json=body, **kwargs)


# --- one valid request per flavor ----------------------------------------------------------------


def test_base_urls() -> None:
    with ProviderServer("openai") as s:
        assert s.base_url == f"http://127.0.0.1:{s.port}/v1"
        assert s.endpoint == s.base_url + "/embeddings"
    with ProviderServer("openrouter") as s:
        assert s.base_url == f"http://127.0.0.1:{s.port}/api/v1"
        assert s.endpoint == s.base_url + "/embeddings"
    with ProviderServer("cohere") as s:
        assert s.base_url == s.url == f"http://127.0.0.1:{s.port}"
        assert s.endpoint == s.url + "/v2/embed"
    with ProviderServer("jinaai") as s:
        assert s.base_url == f"http://127.0.0.1:{s.port}/v1"
        assert s.endpoint == s.base_url + "/embeddings"


@pytest.mark.parametrize("server", ["openai"], indirect=True)
def test_openai_answer(server: ProviderServer) -> None:
    r = _post(server, {**BODIES["openai"], "user": "u1", "encoding_format": "float"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert set(doc) == {"object", "data", "model", "usage"}
    assert doc["object"] == "list"
    assert doc["model"] == "text-embedding-3-small"
    tokens = count_tokens("alpha beta") + count_tokens("gamma")
    assert doc["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert [set(d) for d in doc["data"]] == [{"object", "index", "embedding"}] * 2
    assert [d["object"] for d in doc["data"]] == ["embedding", "embedding"]
    assert [d["index"] for d in doc["data"]] == [0, 1]
    for item, text in zip(doc["data"], ["alpha beta", "gamma"], strict=True):
        assert len(item["embedding"]) == 1536
        assert item["embedding"] == expected_vector("openai", "text-embedding-3-small", text)
        assert np.linalg.norm(item["embedding"]) == pytest.approx(1.0, abs=1e-6)
    # a single string and token arrays are inputs too
    r = _post(server, {"model": "text-embedding-3-small", "input": "alpha beta"})
    assert _vectors("openai", r.json()) == [
        expected_vector("openai", "text-embedding-3-small", "alpha beta")
    ]
    r = _post(server, {"model": "text-embedding-3-small", "input": [[1, 2, 3], [4]]})
    assert r.status_code == 200
    assert r.json()["usage"]["prompt_tokens"] == 4
    assert server.requests[-1].inputs == ["tokens:1,2,3", "tokens:4"]


@pytest.mark.parametrize("server", ["openrouter"], indirect=True)
def test_openrouter_answer(server: ProviderServer) -> None:
    body = {**BODIES["openrouter"], "provider": {"order": ["openai"]}}
    r = _post(server, body)
    assert r.status_code == 200
    doc = r.json()
    assert set(doc) == {"id", "object", "data", "model", "usage"}
    assert doc["id"].startswith("gen-emb-")
    assert doc["object"] == "list"
    assert doc["model"] == "openai/text-embedding-3-small"
    tokens = count_tokens("alpha beta") + count_tokens("gamma")
    assert doc["usage"]["prompt_tokens"] == doc["usage"]["total_tokens"] == tokens
    assert doc["usage"]["cost"] > 0
    assert [(d["object"], d["index"]) for d in doc["data"]] == [("embedding", 0), ("embedding", 1)]
    model = "openai/text-embedding-3-small"
    assert model_dim("openrouter", model) == 1536
    assert _vectors("openrouter", doc) == [
        expected_vector("openrouter", model, "alpha beta"),
        expected_vector("openrouter", model, "gamma"),
    ]
    r = _post(server, {"model": "text-embedding-3-small", "input": "x"})
    assert r.status_code == 400
    assert r.json() == {
        "error": {"code": 400, "message": "text-embedding-3-small is not a valid model ID"}
    }


@pytest.mark.parametrize("server", ["cohere"], indirect=True)
def test_cohere_answer(server: ProviderServer) -> None:
    r = _post(server, {**BODIES["cohere"], "truncate": "END", "embedding_types": ["float"]})
    assert r.status_code == 200
    doc = r.json()
    assert set(doc) == {"id", "embeddings", "texts", "meta", "response_type"}
    assert doc["response_type"] == "embeddings_by_type"
    assert doc["texts"] == ["alpha beta", "gamma"]
    assert doc["meta"]["api_version"] == {"version": "2"}
    tokens = count_tokens("alpha beta") + count_tokens("gamma")
    assert doc["meta"]["billed_units"] == {"input_tokens": tokens}
    assert list(doc["embeddings"]) == ["float"]
    assert doc["embeddings"]["float"] == [
        expected_vector("cohere", "embed-english-v3.0", "alpha beta"),
        expected_vector("cohere", "embed-english-v3.0", "gamma"),
    ]
    assert len(doc["embeddings"]["float"][0]) == 1024


@pytest.mark.parametrize("server", ["cohere"], indirect=True)
def test_cohere_image_answer(server: ProviderServer) -> None:
    url = _png_data_url(5, 7)
    body: dict[str, Any] = {"model": "embed-english-v3.0", "input_type": "image", "images": [url]}
    r = _post(server, body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["texts"] == []
    assert doc["images"] == [{"width": 5, "height": 7, "format": "png", "bit_depth": 24}]
    assert doc["meta"]["billed_units"] == {"images": 1}
    assert doc["embeddings"]["float"] == [expected_vector("cohere", "embed-english-v3.0", url)]
    assert server.stats()["images_billed"] == 1
    # v2 "inputs": one image part -> the image's identity
    body = {
        "model": "embed-v4.0",
        "input_type": "search_document",
        "inputs": [{"content": [{"type": "image_url", "image_url": {"url": url}}]}],
    }
    r = _post(server, body)
    assert r.status_code == 200, r.text
    assert r.json()["embeddings"]["float"] == [expected_vector("cohere", "embed-v4.0", url)]


@pytest.mark.parametrize("server", ["jinaai"], indirect=True)
def test_jina_answer(server: ProviderServer) -> None:
    body = {
        "model": "jina-embeddings-v3",
        "input": ["alpha beta", {"text": "gamma"}],
        "task": "retrieval.passage",
        "late_chunking": False,
        "normalized": True,
        "embedding_type": "float",
    }
    r = _post(server, body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {"model", "object", "usage", "data"}
    assert doc["model"] == "jina-embeddings-v3"
    assert doc["object"] == "list"
    tokens = count_tokens("alpha beta") + count_tokens("gamma")
    assert doc["usage"] == {"total_tokens": tokens, "prompt_tokens": tokens}
    assert [(d["object"], d["index"]) for d in doc["data"]] == [("embedding", 0), ("embedding", 1)]
    assert _vectors("jinaai", doc) == [
        expected_vector("jinaai", "jina-embeddings-v3", "alpha beta"),
        expected_vector("jinaai", "jina-embeddings-v3", "gamma"),
    ]
    # images for CLIP models: a data URL, bare base64 and a URL (not fetched)
    data_url = _png_data_url()
    bare = data_url.split(",", 1)[1]
    images = [{"image": data_url}, {"image": bare}, {"image": "https://example.com/cat.png"}]
    r = _post(server, {"model": "jina-clip-v2", "input": [*images, {"text": "cat"}]})
    assert r.status_code == 200, r.text
    identities = [data_url, bare, "https://example.com/cat.png", "cat"]
    assert _vectors("jinaai", r.json()) == [
        expected_vector("jinaai", "jina-clip-v2", i) for i in identities
    ]
    r = _post(server, {"model": "jina-embeddings-v3", "input": [{"image": data_url}]})
    assert r.status_code == 400
    assert r.json() == {"detail": "Model jina-embeddings-v3 does not support image input"}
    r = _post(server, {"model": "jina-embeddings-v3", "input": ["x"], "normalized": False})
    raw = _vectors("jinaai", r.json())[0]
    assert raw == server.expected("jina-embeddings-v3", "x", normalized=False)
    assert np.linalg.norm(raw) > 1.0


# --- vectors ------------------------------------------------------------------------------------


def test_expected_vector_properties() -> None:
    a = expected_vector("openai", "m", "hello", full_dim=32)
    assert a == expected_vector("openai", "m", "hello", full_dim=32)  # deterministic
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert a != expected_vector("openai", "m", "hello!", full_dim=32)
    assert a != expected_vector("openai", "m2", "hello", full_dim=32)
    assert a != expected_vector("jinaai", "m", "hello", full_dim=32)
    short = np.array(expected_vector("openai", "m", "hello", 8, 32))
    prefix = np.array(a[:8])
    assert np.allclose(short, prefix / np.linalg.norm(prefix), atol=1e-6)  # Matryoshka
    assert model_dim("openai", "unknown") == 64
    assert model_dim("cohere", "embed-english-light-v3.0") == 384
    assert model_dim("openai", "text-embedding-3-large") == 3072
    with pytest.raises(ValueError):
        expected_vector("openai", "m", "x", 33, 32)


def test_count_tokens() -> None:
    assert count_tokens("one two three") == 4  # ceil(13 / 4) beats 3 words
    assert count_tokens("a b c d e f") == 6  # 6 words beat ceil(11 / 4)
    assert count_tokens("") == 0


@pytest.mark.parametrize(
    ("flavor", "body", "fmt"),
    [
        ("openai", {"model": "text-embedding-3-small", "encoding_format": "base64"}, "base64"),
        (
            "openrouter",
            {"model": "openai/text-embedding-3-large", "encoding_format": "base64"},
            "base64",
        ),
        (
            "cohere",
            {
                "model": "embed-v4.0",
                "input_type": "search_query",
                "embedding_types": ["float", "base64"],
            },
            "base64",
        ),
        ("jinaai", {"model": "jina-embeddings-v3", "embedding_type": "base64"}, "base64"),
    ],
)
def test_base64_round_trip(flavor: str, body: dict[str, Any], fmt: str) -> None:
    texts = ["alpha beta", "gamma"]
    field = "texts" if flavor == "cohere" else "input"
    server = ProviderServer(flavor)
    r = _post(server, {**body, field: texts}, headers={})
    assert r.status_code == 200, r.text
    decoded = _vectors(flavor, r.json(), fmt)
    assert decoded == [server.expected(body["model"], t) for t in texts]  # bit-exact
    if flavor == "cohere":  # both types in one answer carry the same numbers
        assert _vectors(flavor, r.json(), "float") == decoded


@pytest.mark.parametrize(
    ("flavor", "body", "dim"),
    [
        ("openai", {"model": "text-embedding-3-large", "dimensions": 256}, 256),
        ("openrouter", {"model": "openai/text-embedding-3-small", "dimensions": 100}, 100),
        (
            "cohere",
            {"model": "embed-v4.0", "input_type": "clustering", "output_dimension": 512},
            512,
        ),
        ("jinaai", {"model": "jina-clip-v2", "dimensions": 64}, 64),
    ],
)
def test_truncated_dimensions(flavor: str, body: dict[str, Any], dim: int) -> None:
    field = "texts" if flavor == "cohere" else "input"
    server = ProviderServer(flavor)
    r = _post(server, {**body, field: ["alpha beta", "gamma"]}, headers={})
    assert r.status_code == 200, r.text
    got = _vectors(flavor, r.json())
    model = body["model"]
    for vec, text in zip(got, ["alpha beta", "gamma"], strict=True):
        assert len(vec) == dim
        assert vec == expected_vector(flavor, model, text, dim, model_dim(flavor, model))
        assert np.allclose(vec, server.expected(model, text, dim), atol=1e-6)
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-6)


def test_dims_overrides() -> None:
    server = ProviderServer("openai", dims={"text-embedding-3-small": 16}, default_dim=8)
    r = _post(server, {"model": "text-embedding-3-small", "input": "a"}, headers={})
    assert _vectors("openai", r.json()) == [server.expected("text-embedding-3-small", "a")]
    assert len(_vectors("openai", r.json())[0]) == 16
    r = _post(server, {"model": "my-model", "input": "a"}, headers={})
    assert len(_vectors("openai", r.json())[0]) == 8
    server = ProviderServer("cohere", wrong_dim={"embed-english-v3.0": 10})
    r = _post(server, BODIES["cohere"], headers={})
    assert r.status_code == 200
    assert [len(v) for v in _vectors("cohere", r.json())] == [10, 10]


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["openai"], indirect=True)
def test_openai_validation(server: ProviderServer) -> None:
    model = "text-embedding-3-small"

    def error(body: Any) -> dict[str, Any]:
        r = _post(server, body)
        assert r.status_code == 400, r.text
        err: dict[str, Any] = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        return err

    err = error({"model": model, "input": "x", "foo": 1})
    assert err["message"] == "Unrecognized request argument supplied: foo"
    assert err["type"] == "invalid_request_error"
    assert error({"input": "x"})["message"] == "you must provide a model parameter"
    err = error({"model": model, "input": ["x"] * 2049})
    assert err["code"] == "array_above_max_length"
    assert "maximum length 2048, but got an array with length 2049" in err["message"]
    err = error({"model": model, "input": ["ok", "word " * 9000]})
    assert err["param"] == "input[1]"
    assert (
        "maximum context length is 8192 tokens, however you requested 11250 tokens"
        in (err["message"])
    )
    err = error({"model": model, "input": ["w " * 7000] * 50})
    assert err["message"] == "Requested 350000 tokens, max 300000 tokens per request"
    assert err["type"] == err["code"] == "max_tokens_per_request"
    err = error({"model": "text-embedding-ada-002", "input": "x", "dimensions": 8})
    assert err["message"] == "This model does not support specifying dimensions."
    assert error({"model": model, "input": "x", "dimensions": 1537})["param"] == "dimensions"
    assert error({"model": model, "input": "x", "dimensions": 0})["param"] == "dimensions"
    assert (
        error({"model": model, "input": "x", "encoding_format": "int8"})["code"] == "invalid_value"
    )
    assert error({"model": model, "input": [""]})["message"].startswith("'$.input' is invalid")
    assert error({"model": model, "input": []})["code"] == "empty_array"
    with _client(server) as client:
        r = client.post(server.endpoint, content=b"{not json", headers=AUTH)
    assert r.status_code == 400
    assert "could not parse the JSON body" in r.json()["error"]["message"]
    assert server.stats()["inputs_succeeded"] == 0


@pytest.mark.parametrize("server", ["cohere"], indirect=True)
def test_cohere_validation(server: ProviderServer) -> None:
    def error(body: Any) -> str:
        r = _post(server, body)
        assert r.status_code == 400, r.text
        doc = r.json()
        assert set(doc) == {"id", "message"}
        message: str = doc["message"]
        return message

    base = {"model": "embed-english-v3.0", "input_type": "search_document"}
    assert "not a valid field" in error({**base, "texts": ["x"], "foo": 1})
    assert "too many texts: got 97, the maximum is 96" in error({**base, "texts": ["x"] * 97})
    assert "input_type" in error({"model": "embed-v4.0", "texts": ["x"]})
    msg = error({**base, "input_type": "image", "images": ["https://example.com/cat.png"]})
    assert "image URLs are not fetched" in msg
    assert "data URI" in error({**base, "images": ["data:text/plain;base64,aGk="]})
    url = _png_data_url()
    assert "at most 1 per call" in error({**base, "images": [url, url]})
    assert "exactly one of texts, images or inputs" in error(
        {**base, "texts": ["x"], "images": [url]}
    )
    assert "output_dimension is not supported" in error(
        {**base, "texts": ["x"], "output_dimension": 256}
    )
    msg = error({**base, "texts": ["ok", "word " * 600], "truncate": "NONE"})
    assert "index 1 is too long" in msg
    r = _post(server, {**base, "texts": ["word " * 600]})  # truncate END: accepted
    assert r.status_code == 200
    assert r.json()["meta"]["billed_units"] == {"input_tokens": 512}
    # embed-v4.0 takes several images per call
    body = {"model": "embed-v4.0", "input_type": "image", "images": [url, _png_data_url(2, 2)]}
    assert _post(server, body).status_code == 200


@pytest.mark.parametrize("server", ["jinaai"], indirect=True)
def test_jina_validation(server: ProviderServer) -> None:
    r = _post(server, {"model": "jina-embeddings-v3", "input": ["x"], "foo": 1})
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {
                "type": "extra_forbidden",
                "loc": ["body", "foo"],
                "msg": "Extra inputs are not permitted",
                "input": 1,
            }
        ]
    }
    r = _post(server, {"input": ["x"]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "model"]
    r = _post(server, {"model": "jina-embeddings-v3", "input": ["x"] * 2049})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "too_long"
    r = _post(server, {"model": "jina-embeddings-v3", "input": ["x"], "task": "nope"})
    assert r.status_code == 422
    r = _post(server, {"model": "jina-clip-v2", "input": ["x"], "task": "retrieval.query"})
    assert r.status_code == 400
    assert r.json() == {"detail": "Model jina-clip-v2 does not support the task parameter"}
    r = _post(server, {"model": "jina-embeddings-v3", "input": ["ok", "word " * 9000]})
    assert r.status_code == 400
    assert r.json()["detail"].startswith("Input at index 1 has 11250 tokens")
    r = _post(server, {"model": "jina-embeddings-v3", "input": ["word " * 9000], "truncate": True})
    assert r.status_code == 200


def test_limits_override() -> None:
    server = ProviderServer("openai", limits={"max_inputs": 3})
    r = _post(server, {"model": "m", "input": ["a", "b", "c", "d"]}, headers={})
    assert r.json()["error"]["code"] == "array_above_max_length"
    with pytest.raises(ValueError, match="unknown limits"):
        ProviderServer("openai", limits={"max_images_v3": 2})


def test_routes_and_harness_paths(http: httpx.Client) -> None:
    with ProviderServer("openai", api_key=KEY) as server:
        r = http.get(server.endpoint, headers=AUTH)
        assert r.status_code == 405
        assert r.json()["error"]["message"] == "Invalid URL (GET /v1/embeddings)"
        r = http.post(server.url + "/v1/nope", json={}, headers=AUTH)
        assert r.status_code == 404
        stats = http.get(server.url + "/_stats").json()  # no key needed, not counted
        assert stats["requests"] == 2
        assert stats["requests_by_status"] == {"405": 1, "404": 1}
        assert http.post(server.url + "/_reset").json() == {"ok": True}
        assert server.stats()["requests"] == 0
    with ProviderServer("jinaai") as server:
        r = http.post(server.url + "/v1/nope", json={})
        assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", FLAVORS, indirect=True)
def test_wrong_key_is_401(server: ProviderServer) -> None:
    body = BODIES[server.flavor]
    wrong = "sk-wrong-key-abcdef123456"
    r = _post(server, body, headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401
    assert wrong not in r.text
    doc = r.json()
    if server.flavor == "openai":
        assert doc["error"]["code"] == "invalid_api_key"
        assert doc["error"]["type"] == "invalid_request_error"
        assert doc["error"]["message"].startswith("Incorrect API key provided: sk-")
    elif server.flavor == "openrouter":
        assert doc == {"error": {"code": 401, "message": "User not found."}}
    elif server.flavor == "cohere":
        assert doc["message"] == "invalid api token"
    else:
        assert doc == {"detail": "Invalid API key"}
    r = _post(server, body, headers={})
    assert r.status_code == 401
    assert _post(server, body, headers={"Authorization": f"bearer {KEY}"}).status_code == 200
    records = server.requests
    assert [rec.auth_ok for rec in records] == [False, False, True]
    assert records[0].headers["authorization"] == "<redacted>"
    assert "authorization" not in records[1].headers
    assert server.stats()["requests_by_status"] == {"401": 2, "200": 1}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_echo_key_in_errors(flavor: str) -> None:
    wrong = "sk-live-WRONG-0123456789"
    server = ProviderServer(flavor, api_key=KEY, echo_key_in_errors=True)
    r = _post(server, BODIES[flavor], headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401
    assert wrong in r.text
    assert KEY not in r.text
    assert server.requests[0].headers["authorization"] == "<redacted>"


# --- faults -------------------------------------------------------------------------------------


def test_scripted_faults(http: httpx.Client) -> None:
    """Over a real socket: a timeout holds the connection, then resets it; a reset is a RST."""
    faults = Faults(
        script=[429, 500, "timeout", 503, "reset", 200],
        retry_after_s=2,
        retry_after_on={429, 503},
        rate_limit_headers={"x-ratelimit-reset-requests": "6m0s"},
        hold_s=0.1,
    )
    with ProviderServer("openai", api_key=KEY, faults=faults) as server:
        body = {"model": "text-embedding-3-small", "input": ["a"]}

        def post() -> httpx.Response:
            return http.post(server.endpoint, json=body, headers=AUTH)

        r = post()
        assert r.status_code == 429
        assert r.headers["retry-after"] == "2"
        assert r.headers["x-ratelimit-reset-requests"] == "6m0s"
        err = r.json()["error"]
        assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded")
        assert err["message"].startswith("Rate limit reached for text-embedding-3-small")
        r = post()
        assert r.status_code == 500
        assert "retry-after" not in r.headers
        assert r.json()["error"]["type"] == "server_error"
        with pytest.raises(httpx.TransportError):
            post()  # the server holds it for 0.1 s, then resets
        r = post()
        assert (r.status_code, r.headers["retry-after"]) == (503, "2")
        with pytest.raises(httpx.TransportError):
            post()  # reset
        r = post()
        assert r.status_code == 200
        assert server.script_remaining == 0
        stats = server.stats()
        assert stats["requests_by_status"] == {
            "429": 1,
            "500": 1,
            "timeout": 1,
            "503": 1,
            "reset": 1,
            "200": 1,
        }
        assert stats["faults"] == {"429": 1, "500": 1, "timeout": 1, "503": 1, "reset": 1}
        assert (stats["inputs_received"], stats["inputs_succeeded"]) == (6, 1)
        assert stats["resent_after_success"] == 0
        assert [rec.fault for rec in server.requests] == [
            "429",
            "500",
            "timeout",
            "503",
            "reset",
            None,
        ]
        assert [rec.status for rec in server.requests] == [429, 500, None, 503, None, 200]


@pytest.mark.parametrize("server", FLAVORS, indirect=True)
def test_fault_bodies_per_flavor(server: ProviderServer) -> None:
    server.faults = Faults(script=[429, 500], retry_after_s="0")
    r = _post(server, BODIES[server.flavor])
    assert (r.status_code, r.headers["retry-after"]) == (429, "0")
    r2 = _post(server, BODIES[server.flavor])
    assert r2.status_code == 500
    for resp, status in ((r, 429), (r2, 500)):
        doc = resp.json()
        if server.flavor == "openai":
            assert set(doc["error"]) == {"message", "type", "param", "code"}
        elif server.flavor == "openrouter":
            assert doc["error"]["code"] == status
            assert isinstance(doc["error"]["message"], str)
        elif server.flavor == "cohere":
            assert set(doc) == {"id", "message"}
        else:
            assert isinstance(doc["detail"], str)


def test_random_faults_are_deterministic() -> None:
    faults = Faults(error_rate=0.5, error_statuses={429: 3, 500: 2}, seed=7)  # 30 % + 20 %

    def run(server: ProviderServer) -> list[int]:
        return [_post(server, {"model": "vendor/m", "input": ["x"]}).status_code for _ in range(40)]

    a = ProviderServer("openrouter", faults=faults)
    b = ProviderServer("openrouter", faults=faults)
    first = run(a)
    assert run(b) == first
    a.reset()  # re-seeds: the same sequence again
    assert run(a) == first
    assert 0 < first.count(429) < 40
    assert 0 < first.count(500) < 40
    assert set(first) == {200, 429, 500}


@pytest.mark.parametrize("server", FLAVORS, indirect=True)
def test_poison_names_the_index(server: ProviderServer) -> None:
    server.poison = "POISON"
    body = dict(BODIES[server.flavor])
    field = "texts" if server.flavor == "cohere" else "input"
    body[field] = ["fine", "also fine", "this is POISON here", "fine too"]
    r = _post(server, body)
    assert r.status_code == 400
    assert "index 2" in r.text or "input[2]" in r.text
    if server.flavor == "openai":
        assert r.json()["error"]["param"] == "input[2]"
    stats = server.stats()
    assert stats["faults"] == {"poison": 1}
    assert stats["inputs_received"] == 4
    assert stats["inputs_succeeded"] == 0
    assert server.requests[-1].fault == "poison"
    body[field] = ["fine", "also fine", "fine too"]
    assert _post(server, body).status_code == 200


def test_push_script_validation() -> None:
    server = ProviderServer("openai")
    server.push_script(429, "timeout")
    assert server.script_remaining == 2
    with pytest.raises(ValueError):
        server.push_script("boom")
    with pytest.raises(ValueError):
        Faults(script=[True])


# --- stats --------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["openai"], indirect=True)
def test_resent_after_success(server: ProviderServer) -> None:
    model = "text-embedding-3-small"
    assert _post(server, {"model": model, "input": ["a", "b"]}).status_code == 200
    assert _post(server, {"model": model, "input": ["b", "c"]}).status_code == 200
    stats = server.stats()
    assert stats["resent_after_success"] == 1  # "b"
    assert (stats["inputs_succeeded"], stats["unique_inputs_succeeded"]) == (4, 3)
    # a failed request's inputs may be sent again: that is a retry, not a resend
    server.push_script(500)
    assert _post(server, {"model": model, "input": ["d"]}).status_code == 500
    assert _post(server, {"model": model, "input": ["d"]}).status_code == 200
    # another output size or model is another input
    r = _post(server, {"model": model, "input": ["a"], "dimensions": 8})
    assert r.status_code == 200
    assert _post(server, {"model": "text-embedding-3-large", "input": ["a"]}).status_code == 200
    stats = server.stats()
    assert stats["resent_after_success"] == 1
    assert stats["unique_inputs_succeeded"] == 6
    assert stats["inputs_received"] == 8
    assert stats["tokens_billed"] == 7
    server.reset()
    assert server.stats()["unique_inputs_succeeded"] == 0
    assert server.requests == []


@pytest.mark.parametrize("server", ["openai"], indirect=True)
def test_request_records(server: ProviderServer) -> None:
    before = time.time()
    body = {"model": "text-embedding-3-small", "input": ["a", "b"]}
    _post(server, body, headers={**AUTH, "X-Custom": "1"})
    (rec,) = server.requests
    assert (rec.method, rec.path, rec.status, rec.fault) == ("POST", "/v1/embeddings", 200, None)
    assert rec.body == body
    assert rec.model == "text-embedding-3-small"
    assert rec.inputs == ["a", "b"]
    assert rec.auth_ok
    assert rec.headers["authorization"] == "<redacted>"
    assert rec.headers["x-custom"] == "1"
    assert before <= rec.timestamp <= time.time()
    assert KEY not in repr(rec)


def test_concurrent_requests_overlap() -> None:
    with (
        ProviderServer("cohere", faults=Faults(latency_s=0.2)) as server,
        httpx.Client(timeout=5) as client,
    ):

        def one(i: int) -> int:
            body = {**BODIES["cohere"], "texts": [f"text {i}"]}
            return client.post(server.endpoint, json=body).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(8)))
        elapsed = time.perf_counter() - started
    assert statuses == [200] * 8
    assert elapsed < 0.8, elapsed  # serial would take 1.6 s
    stats = server.stats()
    assert stats["max_concurrent"] >= 4
    assert stats["in_flight"] == 0
    assert stats["unique_inputs_succeeded"] == 8


# --- own process --------------------------------------------------------------------------------


def test_spawn_server() -> None:
    faults = Faults(script=[429], retry_after_s=1)
    with spawn_server("openai", api_key=KEY, default_dim=16, latency_s=0.01, faults=faults) as srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        with httpx.Client(base_url=srv.base_url, headers=AUTH, timeout=5) as client:
            body = {"model": "my-model", "input": ["a"]}
            r = client.post("/embeddings", json=body)
            assert (r.status_code, r.headers["retry-after"]) == (429, "1")
            r = client.post("/embeddings", json=body)
            assert r.status_code == 200
            assert _vectors("openai", r.json()) == [
                expected_vector("openai", "my-model", "a", 16, 16)
            ]
        stats = srv.stats()
        assert stats["requests_by_status"] == {"429": 1, "200": 1}
        assert stats["inputs_succeeded"] == 1
        srv.reset()
        assert srv.stats()["requests"] == 0
        process = srv.process
    assert process.poll() is not None  # terminated on exit


def test_command_line_shim() -> None:
    """``python tests/provider_servers.py`` is the path benchmarks and docs run."""
    shim = Path(__file__).with_name("provider_servers.py")
    cmd = [sys.executable, str(shim), "--flavor", "jinaai", "--port", "0", "--latency", "0.01"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        r = httpx.post(ready["endpoint"], json=BODIES["jinaai"], timeout=5)
        assert r.status_code == 200
        assert _vectors("jinaai", r.json())[1] == expected_vector(
            "jinaai", "jina-embeddings-v3", "gamma"
        )
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
