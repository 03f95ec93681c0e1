"""Loopback emulators of four remote embedding APIs (OpenAI, OpenRouter, Cohere, Jina), with faults.

The remote backends talk to hosted embedding APIs over HTTP.  Tests and benchmarks can use neither
the network nor real keys, so this module serves each provider's embedding endpoint on 127.0.0.1
with the field names, limits, response shapes and error bodies of its public API reference, and
answers with vectors a test can recompute (``expected_vector``): a client that puts an answer back
on the wrong record, drops the ``dimensions`` it was asked for or decodes base64 wrongly fails an
exact comparison.  Faults (429 with ``Retry-After``, 5xx, timeouts, a poison input) are injected
from a seeded RNG or a script, and the server counts what a client's retry logic must keep right:
no input that was already answered is sent again (``resent_after_success``).

Usage::

    with ProviderServer("openai", api_key="sk-test") as server:
        r = httpx.post(server.endpoint, json={"model": "text-embedding-3-small",
                                              "input": ["a", "b"], "dimensions": 256},
                       headers={"Authorization": "Bearer sk-test"})
        assert r.json()["data"][1]["embedding"] == server.expected(
            "text-embedding-3-small", "b", 256)
        server.faults = Faults(script=[429, 500, "timeout", 200], retry_after="0")
        server.stats()["resent_after_success"]

API::

    FLAVORS = ("openai", "cohere", "jinaai", "openrouter")
    ProviderServer(flavor, *, api_key=None, latency_s=0.0, faults=None, dims=None,
                   wrong_dim=None, default_dim=64, echo_key_in_errors=False, seed=0,
                   host="127.0.0.1", port=0, limits=None, request_log_size=10_000)
        .start() -> self     .stop()     with ProviderServer(...) as server: ...
        .base_url   what a client is configured with: http://127.0.0.1:PORT/v1 (openai, jinaai),
                    .../api/v1 (openrouter) or http://127.0.0.1:PORT (cohere)
        .url  (http://127.0.0.1:PORT)   .endpoint (the embeddings URL)   .port   .flavor
        .latency_s (settable)   .faults (get / set: setting re-seeds the RNG and loads the script)
        .push_script(*outcomes)   .script_remaining
        .stats() -> Stats (a deep copy)   .requests -> list[RequestRecord]   .reset()
        .full_dim(model) -> int   .expected(model, identity, dim=None, *, normalized=True)
    Faults(rate_429=0.0, rate_500=0.0, rate_timeout=0.0, retry_after=None, reset_header=None,
           timeout_sleep_s=5.0, poison=None, script=[])
    expected_vector(flavor, model, input_identity, dim=None, full_dim=None, *, normalized=True)
    count_tokens(text) -> int        model_dim(flavor, model, default_dim=64) -> int
    spawn_server(flavor, **ProviderServer kwargs)   context manager -> RemoteServer
                                                    (.base_url .url .endpoint .port .stats()
                                                     .reset() .process)

    python tests/provider_servers.py --flavor openai --port 0 --latency 0.05 [--dim 256]
        [--api-key K] [--seed N] [--dims JSON] [--wrong-dim JSON] [--faults JSON]
        [--limits JSON] [--echo-key-in-errors] [--log-size N]
    prints one JSON line {"base_url", "url", "endpoint", "port", "flavor"} when it is serving and
    runs until SIGTERM / Ctrl-C.  ``GET /_stats`` answers the stats as JSON and ``POST /_reset``
    calls ``reset()``; these two paths are for the harness and exist in no provider's API (they are
    not counted, need no key and see no faults or latency).

Vectors.  ``expected_vector`` draws a unit vector of the model's full size from a generator
seeded with sha256(flavor, model, identity), then, when ``dimensions`` / ``output_dimension`` is
given, keeps the first ``dim`` values and renormalises them (Matryoshka style).  The values are
float32: the JSON floats and the base64 bytes (little-endian float32) carry the same numbers.  An
input's identity is the text as sent, the image string as sent (data URL, URL or bare base64), or
``"tokens:1,2,3"`` for an OpenAI token array; for a Cohere ``inputs`` item with one part it is
that part's text or image URL, otherwise the compact JSON of its ``content`` list.  The vector does
not depend on ``input_type`` / ``task``.  Jina ``normalized: false`` scales the vector by a
deterministic factor in [1, 10] and truncates without renormalising (``normalized=False``).  Full
sizes come from ``MODEL_DIMS`` (OpenRouter strips the ``vendor/`` prefix and uses OpenAI's table),
then ``dims={model: dim}``, else ``default_dim``; ``wrong_dim={model: dim}`` makes the server
answer vectors of that size instead, to exercise a client's dimension check.

Order of checks for an embeddings request: route (404 / 405), ``latency_s`` sleep, key (401),
then one fault draw (script first, then the seeded RNG), then validation (400 / 422), then the
answer.  Token counts use ``count_tokens``, a documented approximation, not a real tokenizer.

Faults:

* ``script`` items, one per embeddings request that passed the key check: ``200`` (serve
  normally, validation still applies), another int status (the provider's error body for it),
  ``"timeout"`` (sleep ``timeout_sleep_s``, then close the connection without answering) or
  ``"reset"`` (close at once with a TCP RST).  Random draws follow once the script is empty: one
  ``random.Random(seed)`` number per request picks 429, 500 or a timeout by the three rates, so a
  single-threaded client sees the same sequence on every run.
* 429 and 503 answers carry ``Retry-After: <retry_after>`` when it is set, and
  ``reset_header``: a string is sent as OpenAI's ``x-ratelimit-reset-requests`` (e.g. ``"1s"``,
  ``"6m0s"``), a mapping as given.
* ``poison``: any text input containing the substring fails the whole request with the
  provider's 400 naming the input's index, exactly as an input over the token limit does.
* Stats: an input's key is (model, the request fields that change its vector, identity).
  ``resent_after_success`` counts inputs that arrive (with any outcome) after the same key was
  already answered with a 2xx; ``inputs_succeeded`` counts inputs in 2xx answers and
  ``unique_inputs_succeeded`` distinct keys among them.  A request is counted, and its record
  logged, before its answer is written, so a client that has its answer also sees it counted.

Strictness: unknown top-level request fields are rejected by all four flavors (OpenAI does so; the
others may ignore them, but a misspelt field silently ignored is what a client test must catch).
Binary / int8 output types are not emulated (a 400 says so).

Provider facts used (stored copies of the public references, read for this module):

* OpenAI, developers.openai.com/api/reference/resources/embeddings: ``POST /embeddings``;
  ``input`` string, array of strings, array of ints or array of int arrays; at most 2048 items,
  8192 tokens per input, 300,000 tokens summed per request, no empty string; ``model``;
  ``encoding_format`` ``float`` | ``base64``; ``dimensions`` only for ``text-embedding-3`` and
  later; ``user``.  Response ``{object: "list", data: [{object: "embedding", index, embedding}],
  model, usage: {prompt_tokens, total_tokens}}``; errors ``{error: {message, type, param,
  code}}``.  The 300k message (``Requested N tokens, max 300000 tokens per request``, type and
  code ``max_tokens_per_request``) and the context-length message are as quoted from real
  responses in GitHub issues; this server prefixes the latter with ``Invalid 'input[i]': `` and
  sets ``param`` so the index is named (the real message does not name it).
* OpenRouter, openrouter.ai/docs/api/api-reference/embeddings/create-embeddings and
  openrouter.ai/docs/errors: ``POST /api/v1/embeddings`` with ``input``, ``model``
  (``vendor/name``), ``encoding_format``, ``dimensions``, ``user``, ``provider``,
  ``input_type``; response adds ``id`` and ``usage.cost``; errors ``{error: {code, message,
  metadata?}}`` with ``code`` equal to the HTTP status; ``Retry-After`` may come on 429 /
  503.  Limits are the routed model's (here: OpenAI's).
* Cohere Embed v2, cohere-openapi.yaml (github.com/cohere-ai/cohere-developer-experience,
  ``/v2/embed``): ``model`` and ``input_type`` required (``search_document`` | ``search_query`` |
  ``classification`` | ``clustering`` | ``image``); ``texts`` at most 96; ``images`` data URIs of
  ``image/jpeg|png|webp|gif``, at most 1 per call and 5 MB for Embed v3.x models, any number but
  20 MB combined for Embed v4.0 and newer; ``inputs`` at most 96 (``{content: [{type: "text",
  text} | {type: "image_url", image_url: {url}}]}``); ``max_tokens``; ``output_dimension`` 256 |
  512 | 1024 | 1536, embed-v4 and newer only; ``embedding_types`` float, int8, uint8, binary,
  ubinary, base64 (default float; base64 is "the float embedding bytes ... base64 encoded");
  ``truncate`` NONE | START | END (default END); ``priority`` 0..999.  Response ``{id,
  embeddings: {float: [[...]], base64: [...]}, texts, images: [{width, height, format,
  bit_depth}], meta: {api_version: {version: "2"}, billed_units: {input_tokens | images}},
  response_type: "embeddings_by_type"}``; errors ``{id, message}``.  Cohere does not fetch URLs.
  Per-input context (512 tokens for v3, 128k for v4) is from the model pages (AWS / OCI docs).
* Jina, api.jina.ai/openapi.json (stored excerpt) plus the Chroma, CAMEL and LlamaIndex client
  docs: ``POST /v1/embeddings``, Bearer key; ``model``, ``input`` (strings or ``{text}`` /
  ``{image}`` objects, images for CLIP models), ``task`` (retrieval.query | retrieval.passage |
  separation | classification | text-matching; jina-embeddings-v3), ``dimensions`` (Matryoshka:
  v3, clip-v2), ``late_chunking``, ``normalized`` (default true), ``embedding_type`` (float |
  base64 | binary | ubinary | int8 | uint8), ``truncate``; response ``{model, object: "list",
  usage: {total_tokens, prompt_tokens}, data: [...]}``.  Errors ``{detail: "..."}`` (the public
  clients raise ``resp["detail"]``); schema errors are FastAPI's 422 ``{detail: [{type, loc, msg,
  input}]}`` (the OpenAPI lists 422 Validation Error).  The 2048 inputs per request limit is not
  confirmed by the stored docs (8192 tokens per input is); change it with ``limits=``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import functools
import hashlib
import hmac
import io
import json
import math
import random
import select
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

import numpy as np
import pydantic_core

__all__ = [
    "DEFAULT_LIMITS",
    "FLAVORS",
    "MODEL_DIMS",
    "Faults",
    "ProviderServer",
    "RemoteServer",
    "RequestRecord",
    "Stats",
    "count_tokens",
    "expected_vector",
    "model_dim",
    "spawn_server",
]

FLAVORS: tuple[str, ...] = ("openai", "cohere", "jinaai", "openrouter")

#: Full embedding sizes of the models each provider documents (OpenRouter uses OpenAI's).
MODEL_DIMS: dict[str, dict[str, int]] = {
    "openai": {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
    },
    "cohere": {
        "embed-english-v3.0": 1024,
        "embed-multilingual-v3.0": 1024,
        "embed-english-light-v3.0": 384,
        "embed-multilingual-light-v3.0": 384,
        "embed-v4.0": 1536,
    },
    "jinaai": {
        "jina-embeddings-v3": 1024,
        "jina-clip-v2": 1024,
        "jina-clip-v1": 768,
        "jina-embeddings-v2-base-en": 768,
        "jina-embeddings-v4": 2048,
    },
}

#: Per-flavor limits; ``ProviderServer(limits={...})`` overrides single entries.  Cohere's
#: per-input token limit depends on the model (``None`` here: 512 for v3, 128k for v4+).
DEFAULT_LIMITS: dict[str, dict[str, int | None]] = {
    "openai": {"max_inputs": 2048, "max_input_tokens": 8192, "max_request_tokens": 300_000},
    "openrouter": {"max_inputs": 2048, "max_input_tokens": 8192, "max_request_tokens": 300_000},
    "cohere": {
        "max_inputs": 96,
        "max_input_tokens": None,
        "max_images_v3": 1,
        "max_image_bytes_v3": 5 * 1024 * 1024,
        "max_total_image_bytes": 20 * 1024 * 1024,
    },
    "jinaai": {"max_inputs": 2048, "max_input_tokens": 8192},
}

_COHERE_V3_TOKENS = 512
_COHERE_V4_TOKENS = 128_000
_JINA_IMAGE_TOKENS = 1000  # an approximation; Jina bills image tiles
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
)


def count_tokens(text: str) -> int:
    """Token count used for every limit and every ``usage`` figure: the larger of the number of
    whitespace-separated words and ``ceil(len(text) / 4)``.  Crude on purpose (no tokenizer in
    the test environment) but never below the word count, so limits trip predictably."""
    return max(len(text.split()), math.ceil(len(text) / 4))


def model_dim(flavor: str, model: str, default_dim: int = 64) -> int:
    """The full vector size of ``model`` from ``MODEL_DIMS``, or ``default_dim``."""
    if flavor == "openrouter":
        flavor, model = "openai", model.split("/", 1)[-1]
    return MODEL_DIMS.get(flavor, {}).get(model, default_dim)


@functools.lru_cache(maxsize=1024)
def _unit(digest: bytes, full_dim: int) -> np.ndarray:
    # SHAKE-256 stretches the digest into full_dim uniform values: deterministic, and about 6x
    # cheaper than seeding a numpy Generator per input, which made this emulator's own CPU a
    # large share of the remote benchmark on a 2-core machine.
    raw = hashlib.shake_256(digest).digest(2 * full_dim)
    v = np.frombuffer(raw, dtype="<u2").astype(np.float64) - 32767.5
    v /= np.linalg.norm(v)
    v.flags.writeable = False
    return v


def _vector(
    flavor: str, model: str, identity: str, dim: int, full_dim: int, normalized: bool
) -> np.ndarray:
    key = "\x1f".join((flavor, model, identity)).encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(key).digest()
    v = _unit(digest, full_dim)[:dim]
    if not normalized:
        v = v * (1.0 + 9.0 * digest[16] / 255.0)
    elif dim != full_dim:
        v = v / np.linalg.norm(v)
    return v.astype(np.float32)


def expected_vector(
    flavor: str,
    model: str,
    input_identity: str,
    dim: int | None = None,
    full_dim: int | None = None,
    *,
    normalized: bool = True,
) -> list[float]:
    """The vector the server answers for one input (see the module docstring).

    ``full_dim`` defaults to ``model_dim(flavor, model)`` (without a server's ``dims``
    overrides: use ``ProviderServer.expected`` for those); ``dim`` defaults to ``full_dim``.
    """
    full = model_dim(flavor, model) if full_dim is None else full_dim
    d = full if dim is None else dim
    if not 1 <= d <= full:
        raise ValueError(f"dim must be in 1..{full}, got {d}")
    return _vector(flavor, model, input_identity, d, full, normalized).tolist()


@dataclass
class Faults:
    """Fault-injection settings; assign a new one to ``ProviderServer.faults`` to change them."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    retry_after: str | float | None = None  # Retry-After value on 429 / 503, None: no header
    reset_header: str | Mapping[str, str] | None = None  # str: x-ratelimit-reset-requests
    timeout_sleep_s: float = 5.0
    poison: str | None = None
    script: list[int | str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for item in self.script:
            _check_outcome(item)


def _check_outcome(item: int | str) -> None:
    if isinstance(item, bool) or not (
        (isinstance(item, int) and 100 <= item <= 599) or item in ("timeout", "reset")
    ):
        raise ValueError(
            f"not a scripted outcome: {item!r} (use an HTTP status, 'timeout', 'reset')"
        )


class Stats(TypedDict):
    """A snapshot of a server's counters (``ProviderServer.stats()`` / ``GET /_stats``)."""

    requests: int  # embeddings-API requests received (any path but /_stats, /_reset)
    requests_by_status: dict[str, int]  # "200", "429", ..., "timeout", "reset"
    faults: dict[str, int]  # injected outcomes: "429", "500", "timeout", "reset", "poison"
    inputs_received: int
    inputs_succeeded: int  # inputs in 2xx answers (a re-sent input counts again)
    unique_inputs_succeeded: int
    resent_after_success: int
    tokens_billed: int  # usage tokens of 2xx answers
    images_billed: int  # Cohere bills images, not tokens
    max_concurrent: int
    in_flight: int


def _new_stats() -> Stats:
    return Stats(
        requests=0,
        requests_by_status={},
        faults={},
        inputs_received=0,
        inputs_succeeded=0,
        unique_inputs_succeeded=0,
        resent_after_success=0,
        tokens_billed=0,
        images_billed=0,
        max_concurrent=0,
        in_flight=0,
    )


@dataclass
class RequestRecord:
    """One request, as kept in ``ProviderServer.requests``."""

    method: str
    path: str
    body: Any  # the parsed JSON, or the raw text if it did not parse
    headers: dict[str, str]  # lower-case names; Authorization and other secrets "<redacted>"
    auth_ok: bool
    timestamp: float  # time.time() at arrival
    model: str | None = None
    inputs: list[str] = field(default_factory=list)  # input identities, in request order
    status: int | None = None  # None for "timeout" / "reset"
    fault: str | None = None  # "429", "500", "timeout", "reset", "poison" or None
    error: str | None = None  # the error message answered, if any
    duration_s: float = 0.0  # until the answer (or the drop) started
    _keys: list[tuple[str, str, bytes]] = field(default_factory=list, repr=False, compare=False)
    _tokens: int = field(default=0, repr=False, compare=False)
    _images: int = field(default=0, repr=False, compare=False)
    _recorded: bool = field(default=False, repr=False, compare=False)


# --- request model -------------------------------------------------------------------------------


@dataclass
class _Input:
    identity: str
    kind: str  # "text", "tokens", "image", "mixed"
    tokens: int = 0
    text: str | None = None  # for poison checks; every text part of a mixed input joined
    image: dict[str, Any] | None = None  # Cohere's {width, height, format, bit_depth}


@dataclass
class _Parsed:
    model: str
    inputs: list[_Input]
    dims: int | None = None
    formats: tuple[str, ...] = ("float",)
    normalized: bool = True
    tokens: int = 0
    images: int = 0
    texts: list[str] = field(default_factory=list)


class _ApiError(Exception):
    """A provider-shaped error answer."""

    def __init__(
        self, status: int, body: Any, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.message = message
        self.headers = list(headers)
        self.fault: str | None = None  # "poison" when the input was poisoned on purpose

    def poisoned(self) -> _ApiError:
        self.fault = "poison"
        return self


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    names.update({list: "an array", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


def _decode_image(data: bytes) -> dict[str, Any] | None:
    """Width, height, format and bit depth of an encoded image (header only), or None."""
    from PIL import Image, UnidentifiedImageError  # only image requests pay for the import

    try:
        with Image.open(io.BytesIO(data)) as img:
            bands = len(img.getbands())
            depth = {"1": 1, "I;16": 16, "I": 32, "F": 32}.get(img.mode, 8 * bands)
            fmt = (img.format or "").lower()
            return {"width": img.width, "height": img.height, "format": fmt, "bit_depth": depth}
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _split_data_url(value: str) -> tuple[str, str] | None:
    """``(mime, base64 payload)`` of a ``data:<mime>;base64,<payload>`` URL, else None."""
    if not value.startswith("data:"):
        return None
    header, sep, payload = value[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header.split(";", 1)[0].lower(), payload


def _b64decode(payload: str) -> bytes | None:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


# --- providers -----------------------------------------------------------------------------------


class _Api:
    """One provider's routes, validation, answers and error bodies."""

    flavor = ""
    base_path = ""
    endpoint_path = ""
    fields: frozenset[str] = frozenset()
    variant_fields: tuple[str, ...] = ()

    def __init__(self, server: ProviderServer) -> None:
        self.server = server

    def error(
        self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()
    ) -> _ApiError:
        raise NotImplementedError

    def auth_error(self, presented: str | None) -> _ApiError:
        raise NotImplementedError

    def fault_error(self, status: int, model: str | None) -> _ApiError:
        raise NotImplementedError

    def route_error(self, method: str, path: str, *, known_path: bool) -> _ApiError:
        return self.error(405 if known_path else 404, f"Invalid URL ({method} {path})")

    def json_error(self, detail: str) -> _ApiError:
        return self.error(400, f"Could not parse the JSON body of your request: {detail}")

    def parse(self, doc: Any, found: list[_Input]) -> _Parsed:
        raise NotImplementedError

    def render(self, req: _Parsed, vectors: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def variant(self, doc: Any) -> str:
        """The request fields that change an input's vector, for the resend key."""
        if not isinstance(doc, dict):
            return ""
        return json.dumps([doc.get(name) for name in self.variant_fields], default=str)

    # shared helpers

    def _limit(self, name: str) -> int | None:
        return self.server._limits.get(name)

    def _check_poison(self, inputs: Sequence[_Input]) -> int | None:
        poison = self.server.faults.poison
        if not poison:
            return None
        for i, inp in enumerate(inputs):
            if inp.text is not None and poison in inp.text:
                return i
        return None


def _encode(vectors: np.ndarray, fmt: str) -> list[Any]:
    if fmt == "base64":
        le = vectors.astype("<f4", copy=False)
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in le]
    rows: list[Any] = vectors.tolist()
    return rows


class _OpenAI(_Api):
    flavor = "openai"
    base_path = "/v1"
    endpoint_path = "/v1/embeddings"
    fields = frozenset({"input", "model", "encoding_format", "dimensions", "user"})
    variant_fields = ("dimensions",)
    provider_label = "OpenAI"

    def error(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,  # the field's name in OpenAI's body
        param: str | None = None,
        code: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> _ApiError:
        if type is None:
            type = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return _ApiError(status, body, message, headers)

    def auth_error(self, presented: str | None) -> _ApiError:
        if presented is None:
            return self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can obtain "
                "an API key from https://platform.openai.com/account/api-keys.",
            )
        shown = presented if self.server.echo_key_in_errors else _mask(presented)
        return self.error(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def fault_error(self, status: int, model: str | None) -> _ApiError:
        if status == 429:
            return self.error(
                429,
                f"Rate limit reached for {model or 'this model'} in organization org-emulator on "
                "requests per min (RPM): Limit 3000, Used 3000, Requested 1. Please try again in "
                "20ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                type="requests",
                code="rate_limit_exceeded",
            )
        messages = {
            500: "The server had an error while processing your request. Sorry about that!",
            502: "Bad gateway.",
            503: "The engine is currently overloaded, please try again later.",
        }
        return self.error(status, messages.get(status, f"Injected fault: HTTP {status}"))

    def json_error(self, detail: str) -> _ApiError:
        return self.error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
            "this, please contact us through our help center at help.openai.com.)",
        )

    def _invalid_input(self) -> _ApiError:
        return self.error(
            400,
            "'$.input' is invalid. Please check the API reference: "
            "https://platform.openai.com/docs/api-reference.",
        )

    def _check_model(self, model: str) -> None:
        pass

    def _supports_dimensions(self, model: str) -> bool:
        return model.startswith("text-embedding-3")

    def _inputs(self, raw: Any) -> list[_Input]:
        if isinstance(raw, str):
            items: list[Any] = [raw]
        elif isinstance(raw, list):
            if not raw:
                raise self.error(
                    400,
                    "Invalid 'input': empty array. Expected an array with minimum length 1, but "
                    "got an empty array instead.",
                    param="input",
                    code="empty_array",
                )
            items = [raw] if all(_is_int(t) for t in raw) else raw
        elif raw is None:
            raise self.error(400, "Missing required parameter: 'input'.", param="input")
        else:
            raise self._invalid_input()
        inputs: list[_Input] = []
        for item in items:
            if isinstance(item, str) and item:
                inputs.append(_Input(item, "text", count_tokens(item), text=item))
            elif isinstance(item, list) and item and all(_is_int(t) and t >= 0 for t in item):
                identity = "tokens:" + ",".join(map(str, item))
                inputs.append(_Input(identity, "tokens", len(item)))
            else:
                raise self._invalid_input()
        return inputs

    def parse(self, doc: Any, found: list[_Input]) -> _Parsed:
        if not isinstance(doc, dict):
            raise self.error(
                400, f"Invalid type for '$': expected an object, got {_type_name(doc)}"
            )
        unknown = sorted(set(doc) - self.fields)
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            raise self.error(
                400, f"Unrecognized request argument{plural} supplied: {', '.join(unknown)}"
            )
        model = doc.get("model")
        if model is None:
            raise self.error(400, "you must provide a model parameter")
        if not isinstance(model, str):
            raise self.error(
                400,
                f"Invalid type for 'model': expected a string, but got {_type_name(model)} "
                "instead.",
                param="model",
                code="invalid_type",
            )
        self._check_model(model)
        inputs = self._inputs(doc.get("input"))
        found.extend(inputs)
        fmt = doc.get("encoding_format")
        fmt = "float" if fmt is None else fmt
        if fmt not in ("float", "base64"):
            raise self.error(
                400,
                f"Invalid value for 'encoding_format': expected one of 'float' or 'base64', but "
                f"got {fmt!r} instead.",
                param="encoding_format",
                code="invalid_value",
            )
        dims = doc.get("dimensions")
        if dims is not None:
            self._check_dimensions(model, dims)
        user = doc.get("user")
        if user is not None and not isinstance(user, str):
            raise self.error(
                400,
                f"Invalid type for 'user': expected a string, but got {_type_name(user)} instead.",
                param="user",
                code="invalid_type",
            )
        self._check_provider(doc)
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(inputs) > max_inputs:
            raise self.error(
                400,
                f"Invalid 'input': array too long. Expected an array with maximum length "
                f"{max_inputs}, but got an array with length {len(inputs)} instead.",
                param="input",
                code="array_above_max_length",
            )
        per_input = self._limit("max_input_tokens")
        poisoned = self._check_poison(inputs)
        for i, inp in enumerate(inputs):
            if i == poisoned:
                raise self.error(
                    400,
                    f"Invalid 'input[{i}]': the input was rejected (injected poison).",
                    param=f"input[{i}]",
                    code="invalid_value",
                ).poisoned()
            if per_input is not None and inp.tokens > per_input:
                n = inp.tokens
                raise self.error(
                    400,
                    f"Invalid 'input[{i}]': This model's maximum context length is {per_input} "
                    f"tokens, however you requested {n} tokens ({n} in your prompt; 0 for the "
                    "completion). Please reduce your prompt; or completion length.",
                    param=f"input[{i}]",
                )
        total = sum(inp.tokens for inp in inputs)
        max_total = self._limit("max_request_tokens")
        if max_total is not None and total > max_total:
            raise self.error(
                400,
                f"Requested {total} tokens, max {max_total} tokens per request",
                type="max_tokens_per_request",
                code="max_tokens_per_request",
            )
        return _Parsed(model, inputs, dims=dims, formats=(fmt,), tokens=total)

    def _check_dimensions(self, model: str, dims: Any) -> None:
        if not _is_int(dims):
            raise self.error(
                400,
                f"Invalid type for 'dimensions': expected an integer, but got {_type_name(dims)} "
                "instead.",
                param="dimensions",
                code="invalid_type",
            )
        if not self._supports_dimensions(model):
            raise self.error(400, "This model does not support specifying dimensions.")
        if dims < 1:
            raise self.error(
                400,
                f"Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but "
                f"got {dims} instead.",
                param="dimensions",
                code="integer_below_min_value",
            )
        full = self.server.full_dim(model)
        if dims > full:
            raise self.error(
                400,
                f"Invalid 'dimensions': integer above maximum value. Expected a value <= {full}, "
                f"but got {dims} instead.",
                param="dimensions",
                code="integer_above_max_value",
            )

    def _check_provider(self, doc: dict[str, Any]) -> None:
        pass

    def render(self, req: _Parsed, vectors: np.ndarray) -> dict[str, Any]:
        fmt = req.formats[0]
        data = [
            {"object": "embedding", "index": i, "embedding": emb}
            for i, emb in enumerate(_encode(vectors, fmt))
        ]
        usage = {"prompt_tokens": req.tokens, "total_tokens": req.tokens}
        return {"object": "list", "data": data, "model": req.model, "usage": usage}


def _mask(key: str) -> str:
    """OpenAI shows a wrong key as its first 3 and last 4 characters around asterisks."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


class _OpenRouter(_OpenAI):
    flavor = "openrouter"
    base_path = "/api/v1"
    endpoint_path = "/api/v1/embeddings"
    fields = frozenset(
        {"input", "model", "encoding_format", "dimensions", "user", "provider", "input_type"}
    )

    def error(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,  # accepted for the shared OpenAI validation
        param: str | None = None,
        code: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> _ApiError:
        body = {"error": {"code": status, "message": message}}
        return _ApiError(status, body, message, headers)

    def auth_error(self, presented: str | None) -> _ApiError:
        if presented is None:
            return self.error(401, "No auth credentials found")
        if self.server.echo_key_in_errors:
            return self.error(401, f"User not found for API key {presented}")
        return self.error(401, "User not found.")

    def fault_error(self, status: int, model: str | None) -> _ApiError:
        messages = {
            429: f"Rate limit exceeded for {model or 'this model'}. Please retry shortly.",
            500: "Internal Server Error",
            502: "Provider returned error",
            503: "No allowed providers are available for the selected model.",
        }
        return self.error(status, messages.get(status, f"Injected fault: HTTP {status}"))

    def json_error(self, detail: str) -> _ApiError:
        return self.error(400, f"Invalid JSON body: {detail}")

    def _check_model(self, model: str) -> None:
        if "/" not in model.strip("/"):
            raise self.error(400, f"{model} is not a valid model ID")

    def _supports_dimensions(self, model: str) -> bool:
        vendor, _, name = model.partition("/")
        return vendor != "openai" or name.startswith("text-embedding-3")

    def _check_provider(self, doc: dict[str, Any]) -> None:
        provider = doc.get("provider")
        if provider is not None and not isinstance(provider, dict):
            raise self.error(400, "Invalid provider preferences: expected an object")
        input_type = doc.get("input_type")
        if input_type is not None and not isinstance(input_type, str):
            raise self.error(400, "Invalid input_type: expected a string")

    def render(self, req: _Parsed, vectors: np.ndarray) -> dict[str, Any]:
        doc = super().render(req, vectors)
        doc["usage"]["cost"] = round(req.tokens * 2e-8, 12)
        return {"id": f"gen-emb-{uuid.uuid4().hex[:24]}", **doc}


class _Cohere(_Api):
    flavor = "cohere"
    base_path = ""
    endpoint_path = "/v2/embed"
    fields = frozenset(
        {
            "model",
            "input_type",
            "embedding_types",
            "texts",
            "images",
            "inputs",
            "output_dimension",
            "truncate",
            "max_tokens",
            "priority",
        }
    )
    variant_fields = ("input_type", "output_dimension")
    input_types = ("search_document", "search_query", "classification", "clustering", "image")
    embedding_types = ("float", "int8", "uint8", "binary", "ubinary", "base64")
    image_mimes = ("image/jpeg", "image/png", "image/webp", "image/gif")

    def error(
        self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()
    ) -> _ApiError:
        return _ApiError(status, {"id": str(uuid.uuid4()), "message": message}, message, headers)

    def invalid(self, message: str) -> _ApiError:
        return self.error(400, f"invalid request: {message}")

    def auth_error(self, presented: str | None) -> _ApiError:
        if presented is None:
            return self.error(401, "no api key supplied")
        if self.server.echo_key_in_errors:
            return self.error(401, f"invalid api token: {presented}")
        return self.error(401, "invalid api token")

    def fault_error(self, status: int, model: str | None) -> _ApiError:
        messages = {
            429: "You are past the per minute request limit, please wait and try again later.",
            500: "internal server error, this has been reported to our developers",
            503: "service unavailable, please try again later",
        }
        return self.error(status, messages.get(status, f"injected fault: HTTP {status}"))

    def json_error(self, detail: str) -> _ApiError:
        return self.invalid(f"body is not valid JSON: {detail}")

    @staticmethod
    def _is_v3(model: str) -> bool:
        return model.endswith(("-v3.0", "-v2.0"))

    def parse(self, doc: Any, found: list[_Input]) -> _Parsed:
        if not isinstance(doc, dict):
            raise self.invalid("body must be a JSON object")
        unknown = sorted(set(doc) - self.fields)
        if unknown:
            raise self.invalid(f"unknown field: parameter {unknown[0]} is not a valid field")
        model = doc.get("model")
        if not isinstance(model, str) or not model:
            raise self.invalid("model must be a non-empty string")
        input_type = doc.get("input_type")
        if input_type not in self.input_types:
            if input_type is None:
                raise self.invalid("valid input_type must be provided with the provided model")
            raise self.invalid(
                f"input_type must be one of {', '.join(self.input_types)}; got {input_type!r}"
            )
        types = doc.get("embedding_types")
        types = ["float"] if types is None else types
        if not isinstance(types, list) or not types:
            raise self.invalid("embedding_types must be a non-empty array")
        for t in types:
            if t not in self.embedding_types:
                raise self.invalid(
                    f"embedding_types must be one of {', '.join(self.embedding_types)}; got {t!r}"
                )
            if t not in ("float", "base64"):
                raise self.invalid(f"embedding type {t!r} is not supported by this emulator")
        truncate = doc.get("truncate")
        truncate = "END" if truncate is None else truncate
        if truncate not in ("NONE", "START", "END"):
            raise self.invalid(f"truncate must be one of NONE, START, END; got {truncate!r}")
        max_tokens = doc.get("max_tokens")
        if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
            raise self.invalid("max_tokens must be a positive integer")
        priority = doc.get("priority")
        if priority is not None and (not _is_int(priority) or not 0 <= priority <= 999):
            raise self.invalid("priority must be an integer between 0 and 999")
        dims = doc.get("output_dimension")
        if dims is not None:
            if not model.startswith("embed-v4"):
                raise self.invalid(f"output_dimension is not supported for model {model}")
            if not _is_int(dims) or dims not in (256, 512, 1024, 1536):
                raise self.invalid("output_dimension must be one of 256, 512, 1024, 1536")
            if dims > self.server.full_dim(model):
                raise self.invalid(f"output_dimension {dims} is larger than the model's size")
        given = [name for name in ("texts", "images", "inputs") if doc.get(name) is not None]
        if len(given) != 1:
            raise self.invalid("exactly one of texts, images or inputs must be provided")
        kind = given[0]
        raw = doc[kind]
        if not isinstance(raw, list) or not raw:
            raise self.invalid(f"{kind} must be a non-empty array")
        if kind == "texts":
            inputs = self._texts(raw, found)
        elif kind == "images":
            inputs = self._images(model, raw, found)
        else:
            inputs = self._mixed(model, raw, found)
        limit = self._limit("max_input_tokens")
        if limit is None:
            limit = _COHERE_V3_TOKENS if self._is_v3(model) else _COHERE_V4_TOKENS
        if max_tokens is not None:
            limit = min(limit, max_tokens)
        poisoned = self._check_poison(inputs)
        billed = 0
        for i, inp in enumerate(inputs):
            if i == poisoned:
                raise self.invalid(f"input at index {i} was rejected (injected poison)").poisoned()
            if inp.text is not None and inp.tokens > limit and truncate == "NONE":
                raise self.invalid(
                    f"text at index {i} is too long: {inp.tokens} tokens, the maximum is {limit} "
                    "tokens when truncate is NONE"
                )
            billed += min(inp.tokens, limit)
        images = sum(1 for inp in inputs if inp.kind == "image")
        texts = [inp.text for inp in inputs if inp.kind == "text" and inp.text is not None]
        return _Parsed(
            model,
            inputs,
            dims=dims,
            formats=tuple(dict.fromkeys(types)),
            tokens=billed if images == 0 else 0,
            images=images,
            texts=texts,
        )

    def _texts(self, raw: list[Any], found: list[_Input]) -> list[_Input]:
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(raw) > max_inputs:
            raise self.invalid(f"too many texts: got {len(raw)}, the maximum is {max_inputs}")
        if not all(isinstance(t, str) for t in raw):
            raise self.invalid("texts must be an array of strings")
        found.extend(_Input(t, "text", count_tokens(t), text=t) for t in raw)
        return list(found)

    def _image(self, model: str, index: int, value: Any) -> tuple[_Input, int]:
        if not isinstance(value, str):
            raise self.invalid(f"image at index {index} must be a string")
        if value.startswith(("http://", "https://")):
            raise self.invalid(
                f"image at index {index} must be a base64 data URI "
                "(data:image/<format>;base64,...); image URLs are not fetched"
            )
        parts = _split_data_url(value)
        if parts is None or parts[0] not in self.image_mimes:
            raise self.invalid(
                f"image at index {index} must be a valid data URI of type "
                f"{', '.join(self.image_mimes)}"
            )
        data = _b64decode(parts[1])
        meta = None if data is None else _decode_image(data)
        if data is None or meta is None:
            raise self.invalid(f"image at index {index} could not be decoded")
        max_bytes = self._limit("max_image_bytes_v3")
        if self._is_v3(model) and max_bytes is not None and len(data) > max_bytes:
            raise self.invalid(f"image at index {index} is larger than {max_bytes} bytes")
        return _Input(value, "image", 0, image=meta), len(data)

    def _check_image_count(self, model: str, n: int, total_bytes: int) -> None:
        max_images = self._limit("max_images_v3")
        if self._is_v3(model) and max_images is not None and n > max_images:
            raise self.invalid(
                f"too many images: got {n}, model {model} accepts at most {max_images} per call"
            )
        max_total = self._limit("max_total_image_bytes")
        if max_total is not None and total_bytes > max_total:
            raise self.invalid(f"images are larger than {max_total} bytes in total")

    def _images(self, model: str, raw: list[Any], found: list[_Input]) -> list[_Input]:
        self._check_image_count(model, len(raw), 0)
        total = 0
        for i, value in enumerate(raw):
            inp, size = self._image(model, i, value)
            found.append(inp)
            total += size
        self._check_image_count(model, len(raw), total)
        return list(found)

    def _mixed(self, model: str, raw: list[Any], found: list[_Input]) -> list[_Input]:
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(raw) > max_inputs:
            raise self.invalid(f"too many inputs: got {len(raw)}, the maximum is {max_inputs}")
        n_images = 0
        total = 0
        for i, item in enumerate(raw):
            content = item.get("content") if isinstance(item, dict) else None
            if not isinstance(content, list) or not content or set(item) != {"content"}:
                raise self.invalid(f"inputs[{i}] must be an object with a non-empty content array")
            texts: list[str] = []
            urls: list[str] = []
            metas: list[dict[str, Any] | None] = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind == "image_url":
                    url = part.get("image_url")
                    url = url.get("url") if isinstance(url, dict) else url
                    inp, size = self._image(model, i, url)
                    urls.append(inp.identity)
                    metas.append(inp.image)
                    total += size
                else:
                    raise self.invalid(f"inputs[{i}].content has an invalid part")
            n_images += len(urls)
            if len(content) == 1:
                identity = texts[0] if texts else urls[0]
            else:
                identity = json.dumps(content, separators=(",", ":"), sort_keys=True)
            joined = "\n".join(texts) if texts else None
            tokens = count_tokens(joined) if joined is not None else 0
            kind_ = "text" if not urls else ("image" if not texts else "mixed")
            meta = metas[0] if kind_ == "image" else None
            found.append(_Input(identity, kind_, tokens, text=joined, image=meta))
        self._check_image_count(model, n_images, total)
        return list(found)

    def render(self, req: _Parsed, vectors: np.ndarray) -> dict[str, Any]:
        embeddings = {fmt: _encode(vectors, fmt) for fmt in req.formats}
        billed: dict[str, int] = {"input_tokens": req.tokens}
        if req.images:
            billed = {"images": req.images}
        doc: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "embeddings": embeddings,
            "texts": req.texts,
        }
        if req.images:
            doc["images"] = [inp.image for inp in req.inputs if inp.image is not None]
        doc["meta"] = {"api_version": {"version": "2"}, "billed_units": billed}
        doc["response_type"] = "embeddings_by_type"
        return doc


class _Jina(_Api):
    flavor = "jinaai"
    base_path = "/v1"
    endpoint_path = "/v1/embeddings"
    fields = frozenset(
        {
            "model",
            "input",
            "task",
            "dimensions",
            "late_chunking",
            "normalized",
            "embedding_type",
            "truncate",
        }
    )
    variant_fields = ("task", "dimensions", "normalized", "late_chunking")
    tasks = (
        "retrieval.query",
        "retrieval.passage",
        "separation",
        "classification",
        "text-matching",
    )
    embedding_types = ("float", "base64", "binary", "ubinary", "int8", "uint8")
    matryoshka = ("jina-embeddings-v3", "jina-clip-v2", "jina-embeddings-v4")
    fixed_size = ("jina-clip-v1", "jina-embeddings-v2-base-en")

    def error(
        self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()
    ) -> _ApiError:
        return _ApiError(status, {"detail": message}, message, headers)

    def invalid(self, loc: Sequence[str | int], type_: str, msg: str, value: Any) -> _ApiError:
        """FastAPI's 422 body for a schema violation."""
        detail = [{"type": type_, "loc": ["body", *loc], "msg": msg, "input": value}]
        where = ".".join(str(p) for p in loc)
        return _ApiError(422, {"detail": detail}, f"{where}: {msg}")

    def auth_error(self, presented: str | None) -> _ApiError:
        if presented is None:
            return self.error(401, "Authentication required")
        if self.server.echo_key_in_errors:
            return self.error(401, f"Invalid API key: {presented}")
        return self.error(401, "Invalid API key")

    def fault_error(self, status: int, model: str | None) -> _ApiError:
        messages = {
            429: "Rate limit exceeded, please retry later.",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        return self.error(status, messages.get(status, f"Injected fault: HTTP {status}"))

    def route_error(self, method: str, path: str, *, known_path: bool) -> _ApiError:
        return self.error(405, "Method Not Allowed") if known_path else self.error(404, "Not Found")

    def json_error(self, detail: str) -> _ApiError:
        body = {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": detail}]}
        return _ApiError(422, body, f"JSON decode error: {detail}")

    def _supports_images(self, model: str) -> bool:
        return "clip" in model or model == "jina-embeddings-v4"

    def parse(self, doc: Any, found: list[_Input]) -> _Parsed:
        if not isinstance(doc, dict):
            raise self.invalid([], "model_attributes_type", "Input should be an object", doc)
        for name in sorted(doc):
            if name not in self.fields:
                raise self.invalid(
                    [name], "extra_forbidden", "Extra inputs are not permitted", doc[name]
                )
        for name in ("model", "input"):
            if name not in doc:
                raise self.invalid([name], "missing", "Field required", None)
        model = doc["model"]
        if not isinstance(model, str):
            raise self.invalid(["model"], "string_type", "Input should be a valid string", model)
        raw = doc["input"]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise self.invalid(["input"], "list_type", "Input should be a valid list", raw)
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(items) > max_inputs:
            raise self.invalid(
                ["input"],
                "too_long",
                f"List should have at most {max_inputs} items after validation, not {len(items)}",
                None,
            )
        if not items:
            raise self.invalid(
                ["input"],
                "too_short",
                "List should have at least 1 item after validation, not 0",
                [],
            )
        for i, item in enumerate(items):
            found.append(self._item(model, i, item))
        inputs = list(found)
        task = doc.get("task")
        if task is not None:
            if task not in self.tasks:
                allowed = ", ".join(f"'{t}'" for t in self.tasks)
                raise self.invalid(["task"], "literal_error", f"Input should be {allowed}", task)
            if model != "jina-embeddings-v3":
                raise self.error(400, f"Model {model} does not support the task parameter")
        for name in ("late_chunking", "normalized", "truncate"):
            value = doc.get(name)
            if value is not None and not isinstance(value, bool):
                raise self.invalid([name], "bool_type", "Input should be a valid boolean", value)
        normalized = doc.get("normalized")
        normalized = True if normalized is None else normalized
        fmt = doc.get("embedding_type")
        fmt = "float" if fmt is None else fmt
        if fmt not in self.embedding_types:
            allowed = ", ".join(f"'{t}'" for t in self.embedding_types)
            raise self.invalid(
                ["embedding_type"], "literal_error", f"Input should be {allowed}", fmt
            )
        if fmt not in ("float", "base64"):
            raise self.error(400, f"embedding_type {fmt!r} is not supported by this emulator")
        dims = doc.get("dimensions")
        if dims is not None:
            if not _is_int(dims):
                raise self.invalid(
                    ["dimensions"], "int_type", "Input should be a valid integer", dims
                )
            full = self.server.full_dim(model)
            if model in self.fixed_size:
                raise self.error(400, f"Model {model} does not support Matryoshka dimensions")
            if not 1 <= dims <= full:
                raise self.error(400, f"dimensions must be between 1 and {full} for model {model}")
        truncate = bool(doc.get("truncate"))
        per_input = self._limit("max_input_tokens")
        poisoned = self._check_poison(inputs)
        for i, inp in enumerate(inputs):
            if i == poisoned:
                raise self.error(
                    400, f"Input at index {i} was rejected (injected poison)"
                ).poisoned()
            if per_input is not None and inp.tokens > per_input and not truncate:
                raise self.error(
                    400,
                    f"Input at index {i} has {inp.tokens} tokens, which exceeds the maximum of "
                    f"{per_input} tokens for model {model}. Set truncate=true to cut it.",
                )
        total = sum(min(inp.tokens, per_input or inp.tokens) for inp in inputs)
        if doc.get("late_chunking") and per_input is not None:
            text_total = sum(inp.tokens for inp in inputs if inp.kind == "text")
            if text_total > per_input:
                raise self.error(
                    400,
                    f"With late_chunking the inputs are embedded as one text of {text_total} "
                    f"tokens, which exceeds the maximum of {per_input} tokens for model {model}.",
                )
        return _Parsed(
            model, inputs, dims=dims, formats=(fmt,), normalized=normalized, tokens=total
        )

    def _item(self, model: str, i: int, item: Any) -> _Input:
        if isinstance(item, str):
            return _Input(item, "text", count_tokens(item), text=item)
        if isinstance(item, dict) and len(item) == 1:
            ((key, value),) = item.items()
            if key == "text" and isinstance(value, str):
                return _Input(value, "text", count_tokens(value), text=value)
            if key == "image" and isinstance(value, str):
                if not self._supports_images(model):
                    raise self.error(400, f"Model {model} does not support image input")
                if not self._valid_image(value):
                    raise self.error(
                        400, f"Invalid image at index {i}: not a URL or a base64 image"
                    )
                return _Input(value, "image", _JINA_IMAGE_TOKENS)
        raise self.invalid(
            ["input", i],
            "union_tag_invalid",
            "Input should be a string, a {'text': str} or an {'image': str} object",
            item,
        )

    @staticmethod
    def _valid_image(value: str) -> bool:
        if value.startswith(("http://", "https://")):
            return True  # Jina fetches URLs; this emulator accepts them unfetched
        parts = _split_data_url(value)
        data = _b64decode(parts[1] if parts else value)
        return data is not None and _decode_image(data) is not None

    def render(self, req: _Parsed, vectors: np.ndarray) -> dict[str, Any]:
        data = [
            {"object": "embedding", "index": i, "embedding": emb}
            for i, emb in enumerate(_encode(vectors, req.formats[0]))
        ]
        usage = {"total_tokens": req.tokens, "prompt_tokens": req.tokens}
        return {"model": req.model, "object": "list", "usage": usage, "data": data}


_APIS: dict[str, type[_Api]] = {
    "openai": _OpenAI,
    "openrouter": _OpenRouter,
    "cohere": _Cohere,
    "jinaai": _Jina,
}


# --- HTTP plumbing -------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are dropped after this
    # headers and body leave in two writes: with Nagle on, a keep-alive client waits ~40 ms for
    # the delayed ACK on every request
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.app._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.app._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    app: ProviderServer

    def server_bind(self) -> None:
        # skip HTTPServer's socket.getfqdn(), which may wait on a DNS lookup
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


class ProviderServer:
    """One provider's embedding API on 127.0.0.1, served from a background thread."""

    def __init__(
        self,
        flavor: str,
        *,
        api_key: str | None = None,
        latency_s: float = 0.0,
        faults: Faults | None = None,
        dims: Mapping[str, int] | None = None,
        wrong_dim: Mapping[str, int] | None = None,
        default_dim: int = 64,
        echo_key_in_errors: bool = False,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Mapping[str, int | None] | None = None,
        request_log_size: int = 10_000,
    ) -> None:
        if flavor not in _APIS:
            raise ValueError(f"unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}")
        self.flavor = flavor
        self.api_key = api_key
        self.latency_s = latency_s
        self.dims = dict(dims or {})
        self.wrong_dim = dict(wrong_dim or {})
        self.default_dim = default_dim
        self.echo_key_in_errors = echo_key_in_errors
        self.seed = seed
        self.host = host
        self.port = port
        unknown = set(limits or {}) - set(DEFAULT_LIMITS[flavor])
        if unknown:
            raise ValueError(f"unknown limits for {flavor}: {sorted(unknown)}")
        self._limits: dict[str, int | None] = {**DEFAULT_LIMITS[flavor], **(limits or {})}
        self._api = _APIS[flavor](self)
        self._lock = threading.Lock()
        self._stats = _new_stats()
        self._succeeded: set[tuple[str, str, bytes]] = set()
        self._log: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._faults = Faults()
        self._rng = random.Random(seed)
        self._script: deque[int | str] = deque()
        self._stop_event = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.faults = faults if faults is not None else Faults()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> ProviderServer:
        if self._httpd is not None:
            return self
        self._stop_event.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.app = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"provider-server:{self.flavor}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; sleeping (latency / timeout) handlers wake and drop their connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop_event.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections must not outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self._api.base_path

    @property
    def endpoint(self) -> str:
        return self.url + self._api.endpoint_path

    # --- vectors ----------------------------------------------------------------------------

    def full_dim(self, model: str) -> int:
        """The model's full vector size on this server (``dims`` overrides, then the table)."""
        if model in self.dims:
            return self.dims[model]
        return model_dim(self.flavor, model, self.default_dim)

    def expected(
        self, model: str, identity: str, dim: int | None = None, *, normalized: bool = True
    ) -> list[float]:
        """``expected_vector`` with this server's sizes (ignores ``wrong_dim``)."""
        return expected_vector(
            self.flavor, model, identity, dim, self.full_dim(model), normalized=normalized
        )

    def _vectors(self, req: _Parsed) -> np.ndarray:
        full = self.full_dim(req.model)
        dim = req.dims or full
        if req.model in self.wrong_dim:
            full = dim = self.wrong_dim[req.model]
        rows = [
            _vector(self.flavor, req.model, inp.identity, dim, full, req.normalized)
            for inp in req.inputs
        ]
        return np.stack(rows) if rows else np.zeros((0, dim), np.float32)

    # --- faults and introspection -----------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        for item in faults.script:
            _check_outcome(item)
        with self._lock:
            self._faults = faults
            self._rng = random.Random(self.seed)
            self._script = deque(faults.script)

    def push_script(self, *outcomes: int | str) -> None:
        """Append forced outcomes for the next embeddings requests (see ``Faults.script``)."""
        for item in outcomes:
            _check_outcome(item)
        with self._lock:
            self._script.extend(outcomes)

    @property
    def script_remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def stats(self) -> Stats:
        with self._lock:
            return copy.deepcopy(self._stats)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Zero the counters, the request log and the memory of answered inputs; re-seed the
        fault RNG and reload ``faults.script``, so a rerun sees the same faults."""
        with self._lock:
            in_flight = self._stats["in_flight"]
            self._stats = _new_stats()
            self._stats["in_flight"] = in_flight
            self._stats["max_concurrent"] = in_flight
            self._succeeded.clear()
            self._log.clear()
            self._rng = random.Random(self.seed)
            self._script = deque(self._faults.script)

    def _note_fault(self, name: str) -> None:
        with self._lock:
            faults = self._stats["faults"]
            faults[name] = faults.get(name, 0) + 1

    def _draw(self) -> int | str | None:
        with self._lock:
            if self._script:
                return self._script.popleft()
            f = self._faults
            if f.rate_429 + f.rate_500 + f.rate_timeout <= 0:
                return None
            x = self._rng.random()
        if x < f.rate_429:
            return 429
        if x < f.rate_429 + f.rate_500:
            return 500
        if x < f.rate_429 + f.rate_500 + f.rate_timeout:
            return "timeout"
        return None

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # --- request handling -------------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        path = urlsplit(h.path).path
        body = _read_body(h)
        if path == "/_stats" and h.command == "GET":
            self._write(h, 200, pydantic_core.to_json(self.stats()))
            return
        if path == "/_reset" and h.command == "POST":
            self.reset()
            self._write(h, 200, b'{"ok":true}')
            return
        started = time.perf_counter()
        headers = {
            k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v)
            for k, v in h.headers.items()
        }
        rec = RequestRecord(h.command, h.path, None, headers, False, time.time())
        with self._lock:
            s = self._stats
            s["requests"] += 1
            s["in_flight"] += 1
            s["max_concurrent"] = max(s["max_concurrent"], s["in_flight"])
        try:
            self._serve_api(h, rec, path, body)
        except Exception as e:  # a bug here must still answer, and show in the log
            if not rec._recorded:
                self._answer(h, rec, self._api.error(500, f"emulator error: {e!r}"))
        finally:
            rec.duration_s = time.perf_counter() - started
            with self._lock:
                self._stats["in_flight"] -= 1

    def _serve_api(self, h: _Handler, rec: RequestRecord, path: str, body: bytes) -> None:
        api = self._api
        doc: Any = None
        json_error: str | None = None
        try:
            doc = pydantic_core.from_json(body) if body else None
        except ValueError as e:
            json_error = str(e)
            doc = body.decode("utf-8", "replace")
        rec.body = doc
        if isinstance(doc, dict) and isinstance(doc.get("model"), str):
            rec.model = doc["model"]
        if path.rstrip("/") != api.endpoint_path or h.command != "POST":
            known = path.rstrip("/") == api.endpoint_path
            self._answer(h, rec, api.route_error(h.command, path, known_path=known))
            return
        if self.latency_s > 0:
            self._stop_event.wait(self.latency_s)
        found: list[_Input] = []
        parsed: _Parsed | None = None
        invalid: _ApiError | None = None
        if json_error is not None:
            invalid = api.json_error(json_error)
        else:
            try:
                parsed = api.parse(doc, found)
            except _ApiError as e:
                invalid = e
        self._arrived(rec, found, api.variant(doc))
        presented = self._presented_key(h)
        rec.auth_ok = self.api_key is None or (
            presented is not None
            and hmac.compare_digest(presented.encode("utf-8"), self.api_key.encode("utf-8"))
        )
        if not rec.auth_ok:
            self._answer(h, rec, api.auth_error(presented))
            return
        outcome = self._draw()
        if outcome is not None and outcome != 200:
            rec.fault = str(outcome)
            self._note_fault(rec.fault)
            if outcome in ("timeout", "reset"):
                self._drop(h, rec, reset=outcome == "reset")
                return
            assert isinstance(outcome, int)
            self._answer(h, rec, self._fault_error(outcome, rec.model))
            return
        if invalid is not None:
            if invalid.fault is not None:
                rec.fault = invalid.fault
                self._note_fault(invalid.fault)
            self._answer(h, rec, invalid)
            return
        assert parsed is not None
        doc_out = api.render(parsed, self._vectors(parsed))
        rec._tokens = parsed.tokens
        rec._images = parsed.images
        self._respond(h, rec, 200, pydantic_core.to_json(doc_out))

    @staticmethod
    def _presented_key(h: _Handler) -> str | None:
        header = h.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else header

    def _arrived(self, rec: RequestRecord, found: list[_Input], variant: str) -> None:
        model = rec.model or ""
        rec.inputs = [inp.identity for inp in found]
        rec._keys = [
            (
                model,
                variant,
                hashlib.blake2b(inp.identity.encode("utf-8", "surrogatepass")).digest(),
            )
            for inp in found
        ]
        with self._lock:
            s = self._stats
            s["inputs_received"] += len(rec._keys)
            s["resent_after_success"] += sum(1 for key in rec._keys if key in self._succeeded)

    def _fault_error(self, status: int, model: str | None) -> _ApiError:
        err = self._api.fault_error(status, model)
        if status in (429, 503):
            f = self._faults
            if f.retry_after is not None:
                value = f.retry_after
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                err.headers.append(("Retry-After", str(value)))
            if isinstance(f.reset_header, str):
                err.headers.append(("x-ratelimit-reset-requests", f.reset_header))
            elif f.reset_header is not None:
                err.headers.extend(f.reset_header.items())
        return err

    def _answer(self, h: _Handler, rec: RequestRecord, err: _ApiError) -> None:
        rec.error = err.message
        self._respond(h, rec, err.status, pydantic_core.to_json(err.body), err.headers)

    def _record(self, rec: RequestRecord) -> None:
        """Count a request once, before its answer leaves."""
        if rec._recorded:
            return
        rec._recorded = True
        key = str(rec.status) if rec.status is not None else str(rec.fault)
        with self._lock:
            s = self._stats
            s["requests_by_status"][key] = s["requests_by_status"].get(key, 0) + 1
            if rec.status is not None and 200 <= rec.status < 300:
                s["inputs_succeeded"] += len(rec._keys)
                s["tokens_billed"] += rec._tokens
                s["images_billed"] += rec._images
                self._succeeded.update(rec._keys)
                s["unique_inputs_succeeded"] = len(self._succeeded)
            self._log.append(rec)

    def _respond(
        self,
        h: _Handler,
        rec: RequestRecord,
        status: int,
        payload: bytes,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        rec.status = status
        self._record(rec)
        self._write(h, status, payload, headers)

    @staticmethod
    def _write(
        h: _Handler, status: int, payload: bytes, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("x-request-id", uuid.uuid4().hex)
            for name, value in headers:
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(payload)
        except OSError:  # the client went away
            h.close_connection = True

    def _drop(self, h: _Handler, rec: RequestRecord, *, reset: bool) -> None:
        """Answer nothing: after ``timeout_sleep_s`` close the connection, or reset it now."""
        rec.status = None
        self._record(rec)
        h.close_connection = True
        conn = h.connection
        if reset:
            with contextlib.suppress(OSError):  # SO_LINGER 0: close() sends a TCP RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            return
        self._stop_event.wait(self._faults.timeout_sleep_s)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)


# --- own process, for benchmarks -----------------------------------------------------------------


@dataclass
class RemoteServer:
    """A ``ProviderServer`` running in a child process (see ``spawn_server``)."""

    flavor: str
    base_url: str
    url: str
    endpoint: str
    port: int
    process: subprocess.Popen[str]

    def stats(self) -> Stats:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as resp:
            stats: Stats = json.loads(resp.read())
            return stats

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/_reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


def _cli_args(kwargs: Mapping[str, Any]) -> list[str]:
    """``ProviderServer`` keyword arguments as this script's command-line flags."""
    args: list[str] = []
    simple = {
        "api_key": "--api-key",
        "latency_s": "--latency",
        "default_dim": "--dim",
        "seed": "--seed",
        "host": "--host",
        "port": "--port",
        "request_log_size": "--log-size",
    }
    as_json = {"dims": "--dims", "wrong_dim": "--wrong-dim", "limits": "--limits"}
    for name, value in kwargs.items():
        if value is None:
            continue
        if name in simple:
            args += [simple[name], str(value)]
        elif name in as_json:
            args += [as_json[name], json.dumps(dict(value))]
        elif name == "faults":
            args += ["--faults", json.dumps(asdict(value))]
        elif name == "echo_key_in_errors":
            args += ["--echo-key-in-errors"] if value else []
        else:
            raise TypeError(f"spawn_server() got an unexpected keyword argument {name!r}")
    return args


@contextlib.contextmanager
def spawn_server(
    flavor: str, *, ready_timeout_s: float = 30.0, **kwargs: Any
) -> Iterator[RemoteServer]:
    """Run ``python tests/provider_servers.py`` in a child process (its own GIL, as a benchmark
    needs) and yield a handle once it prints its ready line; the child is terminated on exit."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--flavor", flavor, *_cli_args(kwargs)]
    if "--port" not in cmd:
        cmd += ["--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], ready_timeout_s)
        line = proc.stdout.readline() if readable else ""
        if not line:
            raise RuntimeError(
                f"provider server did not start within {ready_timeout_s} s "
                f"(exit code {proc.poll()}): {' '.join(cmd)}"
            )
        info = json.loads(line)
        yield RemoteServer(
            flavor=info["flavor"],
            base_url=info["base_url"],
            url=info["url"],
            endpoint=info["endpoint"],
            port=info["port"],
            process=proc,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one flavor in the foreground until SIGTERM / Ctrl-C (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Loopback embedding-provider emulator.")
    parser.add_argument("--flavor", required=True, choices=FLAVORS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--dim", type=int, default=64, help="size for models not in MODEL_DIMS")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dims", type=json.loads, default=None, help='{"model": dim}')
    parser.add_argument("--wrong-dim", type=json.loads, default=None, help='{"model": dim}')
    parser.add_argument("--faults", type=json.loads, default=None, help="Faults fields as JSON")
    parser.add_argument("--limits", type=json.loads, default=None, help="limit overrides")
    parser.add_argument("--echo-key-in-errors", action="store_true")
    parser.add_argument("--log-size", type=int, default=1000, help="requests kept in the log")
    args = parser.parse_args(argv)
    server = ProviderServer(
        args.flavor,
        api_key=args.api_key,
        latency_s=args.latency,
        faults=Faults(**args.faults) if args.faults else None,
        dims=args.dims,
        wrong_dim=args.wrong_dim,
        default_dim=args.dim,
        echo_key_in_errors=args.echo_key_in_errors,
        seed=args.seed,
        host=args.host,
        port=args.port,
        limits=args.limits,
        request_log_size=args.log_size,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ready = {
        "flavor": server.flavor,
        "base_url": server.base_url,
        "url": server.url,
        "endpoint": server.endpoint,
        "port": server.port,
    }
    print(json.dumps(ready), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
