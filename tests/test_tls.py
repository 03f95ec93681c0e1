"""TLS settings for httpx clients: plain-http clients load no CA bundle, the rest share one."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import qdrant_client

from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.io.tls import httpx_verify, shared_tls_context


def test_plain_http_needs_no_tls_context() -> None:
    assert httpx_verify("http://127.0.0.1:6333") is False
    assert httpx_verify("HTTP://gateway.internal/v1") is False


def test_https_and_unknown_urls_share_one_verifying_context() -> None:
    context = httpx_verify("https://api.openai.com/v1")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert httpx_verify(None) is context
    assert httpx_verify("localhost:6333") is context  # no scheme: assume TLS may happen
    assert shared_tls_context() is context


def test_verification_turned_off_stays_off() -> None:
    assert httpx_verify("https://xyz.cloud.qdrant.io", verify=False) is False


class _Recorder:
    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> object:
        self.kwargs.append(kwargs)
        return object()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (QdrantTarget(url="http://127.0.0.1:6333"), False),
        (QdrantTarget(url="https://xyz.cloud.qdrant.io:6333"), "shared"),
        (QdrantTarget(url="http://10.0.0.5:6333", https=True), "shared"),
        (QdrantTarget(url="https://xyz.cloud.qdrant.io:6333", https=False), False),
        (QdrantTarget(url="https://xyz.cloud.qdrant.io:6333", verify_tls=False), False),
    ],
)
def test_qdrant_clients_get_the_verify_their_url_needs(
    monkeypatch: pytest.MonkeyPatch, target: QdrantTarget, expected: Any
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(qdrant_client, "QdrantClient", recorder)
    target.connect()
    (kwargs,) = recorder.kwargs
    if expected == "shared":
        assert kwargs["verify"] is shared_tls_context()
    else:
        assert kwargs["verify"] is expected
