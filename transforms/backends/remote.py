"""Remote embedding providers over httpx: batching to limits, a bounded and adaptive number of
requests in flight, retries with backoff, and isolation of bad inputs by splitting.

One ``RemoteClient`` per provider endpoint and API key per worker process, shared by every
DoFn thread, so the in-flight window is the worker's, not a thread's. The retry loop, the
limiter and the clock are the package's own (``qdrant_beam.io``): the same rules for Qdrant
and for the providers. What differs between providers is the ``Provider``'s business.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import email.utils
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import numpy as np

from qdrant_beam.io.clock import Clock
from qdrant_beam.io.errors import (
    AuthError,
    PermanentError,
    QdrantBeamError,
    RateLimited,
    SpecError,
    Timeout,
    TransientError,
    Unavailable,
    VectorSizeMismatch,
)
from qdrant_beam.io.limiter import Limiter
from qdrant_beam.io.retry import Retrying, retry_cause
from qdrant_beam.io.tls import httpx_verify
from qdrant_beam.transforms.backends.providers import Provider, ProviderConfig, RemoteInput

__all__ = ["CallStats", "RemoteClient", "parse_reset", "redact"]

REDACTED = "<redacted>"
_MS_PER_S = 1000
_SPLIT_STATUSES = {400, 413, 422}
_AUTH_STATUSES = {401, 403}
_TRANSIENT_STATUSES = {408, 409, 425, 429}
_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def redact(text: str, secret: str | None) -> str:
    """``text`` with the secret (and any long prefix of it a provider echoes) removed."""
    if not secret:
        return text
    text = text.replace(secret, REDACTED)
    if len(secret) >= 12:  # "Incorrect API key provided: sk-abc...wxyz" style echoes
        text = re.sub(re.escape(secret[:8]) + r"\S*", REDACTED, text)
    return text


def parse_reset(value: str | None) -> float | None:
    """Seconds from ``Retry-After`` (seconds or HTTP date) or an OpenAI-style reset
    (``"1s"``, ``"6m0s"``, ``"20ms"``)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = list(_DURATION.finditer(text))
    if parts and "".join(p.group(0) for p in parts) == text:
        return sum(float(p.group("value")) * _UNIT_S[p.group("unit")] for p in parts)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _retry_after(headers: httpx.Headers) -> float | None:
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / _MS_PER_S)
        except ValueError:
            pass
    waits = [
        parse_reset(headers.get(name))
        for name in ("retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
    ]
    known = [w for w in waits if w is not None]
    if not known:
        return None
    # Retry-After is the server's explicit answer; the resets say when each budget refills.
    explicit = waits[0]
    return explicit if explicit is not None else max(known)


@dataclasses.dataclass
class CallStats:
    """What one ``embed`` call cost; the DoFn turns it into Beam metrics on its own thread."""

    requests: int = 0
    inputs_sent: int = 0
    splits: int = 0
    tokens: int = 0
    throttled_s: float = 0.0
    retries: Counter[str] = dataclasses.field(default_factory=Counter)
    latencies_ms: list[int] = dataclasses.field(default_factory=list)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: Any) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)

    def retried(self, error: QdrantBeamError, waited_s: float) -> None:
        with self._lock:
            self.retries[retry_cause(error)] += 1
            self.throttled_s += waited_s

    def latency(self, ms: int) -> None:
        with self._lock:
            self.latencies_ms.append(ms)


Outcome = Any  # np.ndarray, or the PermanentError for that input


class RemoteClient:
    """Embeds inputs with one provider endpoint; thread-safe, one per worker and key."""

    def __init__(
        self,
        provider: Provider,
        config: ProviderConfig,
        api_key: str | None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self._config = config
        self._key = api_key
        self.limiter = Limiter(
            config.concurrency, clock=clock, rng=random.Random(rng.random()) if rng else None
        )
        # no listener: ``Limiter.slot`` feeds the window (and Retry-After pauses) itself
        self._retrying = Retrying(config.retry, clock=clock, rng=rng)
        base_url = (config.base_url or provider.default_base_url).rstrip("/")
        encoding = config.encoding or ("float" if config.base_url else "base64")
        self._encoding_options = provider.encoding_options(encoding)
        maximum = config.concurrency.maximum
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(config.timeout_s, connect=min(10.0, config.timeout_s)),
            headers={**config.headers, **provider.headers(api_key)},
            limits=httpx.Limits(max_connections=maximum, max_keepalive_connections=maximum),
            transport=transport,
            verify=httpx_verify(base_url),
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=maximum * 2, thread_name_prefix=f"qdrant-beam-{provider.name}"
        )

    def __repr__(self) -> str:  # never the key
        return f"RemoteClient({self.provider.name}, {self._http.base_url})"

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()

    # -- batching ---------------------------------------------------------------------------
    def chunks(self, inputs: Sequence[RemoteInput]) -> list[list[int]]:
        """Indices of ``inputs`` per request, within the provider's input and token limits."""
        provider, config = self.provider, self._config
        max_inputs = min(provider.max_inputs, config.max_inputs or provider.max_inputs)
        if inputs and inputs[0].kind == "image":
            max_inputs = min(max_inputs, max(1, provider.max_images))
        budget = config.max_request_tokens or provider.max_request_tokens
        chunks: list[list[int]] = []
        current: list[int] = []
        tokens = 0
        for index, item in enumerate(inputs):
            full = len(current) >= max_inputs
            over = budget is not None and current and tokens + item.tokens > budget
            if full or over:
                chunks.append(current)
                current, tokens = [], 0
            current.append(index)
            tokens += item.tokens
        if current:
            chunks.append(current)
        return chunks

    # -- embedding --------------------------------------------------------------------------
    def embed(
        self,
        model: str,
        inputs: Sequence[RemoteInput],
        options: Mapping[str, Any],
        *,
        is_query: bool,
        expected_dim: int | None,
        stats: CallStats,
    ) -> list[Outcome]:
        """One outcome per input; requests run concurrently within the worker's window.

        Raises:
            AuthError: the key is missing or refused (a deployment error: fail loudly).
            SpecError: the provider does not know the model.
        """
        if not self._key:
            raise AuthError(
                f"no API key for {self.provider.name}: set the environment variable "
                f"{self._config.api_key_env or self.provider.env_key} on the workers, or the "
                f"option {self.provider.option_key!r} on the inference objects"
            )
        call_options = {**self._encoding_options, **options}
        outcomes: list[Outcome] = [None] * len(inputs)
        chunks = self.chunks(inputs)
        futures = [
            self._pool.submit(
                self._embed_chunk,
                model,
                [inputs[i] for i in chunk],
                call_options,
                is_query,
                expected_dim,
                stats,
            )
            for chunk in chunks
        ]
        for chunk, future in zip(chunks, futures, strict=True):
            for index, outcome in zip(chunk, future.result(), strict=True):
                outcomes[index] = outcome
        return outcomes

    def _embed_chunk(
        self,
        model: str,
        inputs: list[RemoteInput],
        options: dict[str, Any],
        is_query: bool,
        expected_dim: int | None,
        stats: CallStats,
    ) -> list[Outcome]:
        """Send one request with retries; split it when the provider rejects an input."""
        body = self.provider.build(model, inputs, options, is_query)
        try:
            vectors = self._retrying.call(
                lambda: self._send_once(body, len(inputs), stats), on_retry=stats.retried
            )
        except _Rejected as rejected:
            if len(inputs) == 1:
                return [PermanentError(f"{self.provider.name} rejected this input: {rejected}")]
            stats.add(splits=1)
            half = len(inputs) // 2
            return self._embed_chunk(
                model, inputs[:half], options, is_query, expected_dim, stats
            ) + self._embed_chunk(model, inputs[half:], options, is_query, expected_dim, stats)
        except TransientError as exc:  # retries exhausted: dead letters, with the cause
            attempts = getattr(exc, "attempts", 1)
            error = TransientError(
                f"{self.provider.name} still failing after {attempts} attempts: {exc}"
            )
            return [error] * len(inputs)
        except PermanentError as exc:
            if isinstance(exc, AuthError):
                raise
            return [exc] * len(inputs)
        return [self._check_dim(model, v, expected_dim) for v in vectors]

    def _check_dim(self, model: str, vector: np.ndarray, expected: int | None) -> Outcome:
        if expected is not None and vector.shape[0] != expected:
            return VectorSizeMismatch(
                f"{model} returned {vector.shape[0]} dimensions where {expected} are expected; "
                f"set the model's size option ({self.provider.dim_option or 'none'}) or fix the "
                f"vector's size in the spec"
            )
        return vector

    def _send_once(self, body: dict[str, Any], n: int, stats: CallStats) -> list[np.ndarray]:
        """One request in a slot of the window; its outcome grows or shrinks the window."""
        name = self.provider.name
        with self.limiter.slot():
            stats.add(requests=1, inputs_sent=n)
            started = time.perf_counter()
            try:
                response = self._http.post(self.provider.path, json=body)
            except httpx.TimeoutException:
                raise Timeout(f"{name} request timed out") from None
            except httpx.TransportError as exc:
                raise Unavailable(f"{name} connection failed: {type(exc).__name__}") from None
            stats.latency(int((time.perf_counter() - started) * _MS_PER_S))
            self._raise_for_status(response)
            try:
                payload = response.json()
            except ValueError:
                raise Unavailable(
                    f"{name} answered {response.status_code} with a body that is not JSON",
                    response.status_code,
                ) from None
            vectors, tokens = self.provider.parse(payload, n)
            stats.add(tokens=tokens)
            return vectors

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        message = redact(
            self.provider.error_message(body, response.text[:300] or f"HTTP {status}"), self._key
        )
        where = f"{self.provider.name} answered {status}: {message}"
        if status == 429:
            raise RateLimited(where, _retry_after(response.headers))
        if status >= 500 or status in _TRANSIENT_STATUSES:
            raise Unavailable(where, status)
        if status in _AUTH_STATUSES:
            env = self._config.api_key_env or self.provider.env_key
            raise AuthError(f"{where} (check the key in {env} or {self.provider.option_key!r})")
        if status == 404:
            raise SpecError(f"{where} (is the model name or base URL right?)")
        if status in _SPLIT_STATUSES:
            raise _Rejected(message)
        raise PermanentError(where)


class _Rejected(QdrantBeamError):
    """A 400/413/422: some input in the request is bad; split to find it."""
