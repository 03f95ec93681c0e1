"""How one call group (requests for one model with the same load options) is computed: a local
fastembed model, or a remote provider. Both behind ``GroupRunner.run``.

A local run orders its inputs by token length, so fastembed's padded batches hold inputs of
similar length, makes one model call, and isolates an input the model cannot take. A remote
run turns the inputs into what the provider takes and lets ``RemoteClient`` batch and retry.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from qdrant_beam.io.errors import PermanentError
from qdrant_beam.transforms.backends.local import LocalEmbedder
from qdrant_beam.transforms.backends.providers import RemoteInput, estimate_tokens
from qdrant_beam.transforms.backends.registry import InputKind
from qdrant_beam.transforms.backends.remote import CallStats, RemoteClient
from qdrant_beam.transforms.images import ImageReader
from qdrant_beam.transforms.metrics import EngineMetrics
from qdrant_beam.transforms.options import thaw_options
from qdrant_beam.transforms.requests import Request

__all__ = ["GroupRunner", "LocalRunner", "RemoteRunner", "RunContext"]

_MS_PER_S = 1000

Outcome = Any  # a raw vector, or the PermanentError that stopped it


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a run may use besides its requests."""

    metrics: EngineMetrics
    images: ImageReader
    embed_batch_size: int = 32
    image_workers: int = 8


class GroupRunner(Protocol):
    def run(self, requests: list[Request], ctx: RunContext) -> dict[Hashable, Outcome]:
        """One outcome per request key; a bad input's outcome is its ``PermanentError``."""


def load_inputs(
    requests: list[Request], load: Callable[[Any], Any], workers: int
) -> tuple[list[Any], list[Request], dict[Hashable, Outcome]]:
    """Each request's input through ``load`` (images: read, checked, decoded), on up to
    ``workers`` threads: the inputs and requests that loaded, and the failures by key."""

    def attempt(req: Request) -> Any:
        try:
            return load(req.value)
        except PermanentError as exc:
            return exc

    if len(requests) == 1 or workers <= 1:
        loaded = [attempt(req) for req in requests]
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            loaded = list(pool.map(attempt, requests))
    inputs: list[Any] = []
    ready: list[Request] = []
    failed: dict[Hashable, Outcome] = {}
    for req, item in zip(requests, loaded, strict=True):
        if isinstance(item, Exception):
            failed[req.key] = item
        else:
            inputs.append(item)
            ready.append(req)
    return inputs, ready, failed


class LocalRunner:
    """A loaded fastembed model."""

    def __init__(self, embedder: LocalEmbedder) -> None:
        self.embedder = embedder

    def run(self, requests: list[Request], ctx: RunContext) -> dict[Hashable, Outcome]:
        outcomes: dict[Hashable, Outcome]
        if requests[0].group.input_kind is InputKind.TEXT:
            inputs, ready, outcomes = [req.value for req in requests], list(requests), {}
        else:
            inputs, ready, outcomes = load_inputs(requests, ctx.images.load, ctx.image_workers)
        if not ready:
            return outcomes
        lengths = self._lengths(ready, inputs, ctx.metrics)
        order = sorted(range(len(ready)), key=lengths.__getitem__)
        ready = [ready[i] for i in order]
        inputs = [inputs[i] for i in order]
        meter = self.embedder.meter
        tokens = [min(lengths[i], meter.max_length) for i in order] if meter is not None else None
        outcomes.update(self._call(ready, inputs, tokens, ctx))
        return outcomes

    def _lengths(self, ready: list[Request], inputs: list[Any], m: EngineMetrics) -> list[int]:
        meter = self.embedder.meter
        if meter is None or ready[0].group.input_kind is not InputKind.TEXT:
            return [req.size for req in ready]
        lengths = meter.lengths(inputs)
        m.inc("truncated_inputs", sum(1 for n in lengths if n > meter.max_length))
        return lengths

    def _call(
        self,
        ready: list[Request],
        inputs: list[Any],
        tokens: list[int] | None,
        ctx: RunContext,
    ) -> dict[Hashable, Outcome]:
        embedder, m = self.embedder, ctx.metrics
        is_query = ready[0].group.is_query
        started = time.perf_counter()
        m.inc("model_calls")
        m.inc("model_inputs", len(inputs))
        try:
            vectors = embedder.embed(
                inputs, is_query=is_query, batch_size=ctx.embed_batch_size, lengths=tokens
            )
            result: dict[Hashable, Outcome] = {
                r.key: v for r, v in zip(ready, vectors, strict=True)
            }
        except Exception:  # isolate the input the model cannot take, keep the rest
            result = {}
            for req, value in zip(ready, inputs, strict=True):
                m.inc("model_calls")
                try:
                    result[req.key] = embedder.embed([value], is_query=is_query, batch_size=1)[0]
                except Exception as exc:
                    result[req.key] = PermanentError(
                        f"model {embedder.info.name!r} failed on this input: "
                        f"{type(exc).__name__}: {exc}"
                    )
        m.observe("model_call_ms", int((time.perf_counter() - started) * _MS_PER_S))
        return result


class RemoteRunner:
    """A provider's client for one account."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def run(self, requests: list[Request], ctx: RunContext) -> dict[Hashable, Outcome]:
        provider = self.client.provider
        outcomes: dict[Hashable, Outcome]
        if requests[0].group.input_kind is InputKind.TEXT:
            inputs: list[RemoteInput] = [
                RemoteInput("text", r.value, estimate_tokens(r.value)) for r in requests
            ]
            ready, outcomes = list(requests), {}
        else:
            inputs, ready, outcomes = load_inputs(
                requests, lambda value: provider.image_input(value, ctx.images), ctx.image_workers
            )
        if not ready:
            return outcomes
        group, m = ready[0].group, ctx.metrics
        stats = CallStats()
        started = time.perf_counter()
        m.inc("model_calls")
        m.inc("model_inputs", len(inputs))
        try:
            vectors = self.client.embed(
                ready[0].info.name,
                inputs,
                thaw_options(group.load),
                is_query=group.is_query,
                expected_dim=ready[0].expected_dim,
                stats=stats,
            )
        finally:
            _record(stats, m)
        m.observe("model_call_ms", int((time.perf_counter() - started) * _MS_PER_S))
        outcomes.update({r.key: v for r, v in zip(ready, vectors, strict=True)})
        return outcomes


def _record(stats: CallStats, m: EngineMetrics) -> None:
    m.inc("remote_requests", stats.requests)
    m.inc("remote_inputs_sent", stats.inputs_sent)
    m.inc("remote_splits", stats.splits)
    m.inc("remote_tokens", stats.tokens)
    m.inc("remote_throttled_ms", int(stats.throttled_s * _MS_PER_S))
    for cause, n in stats.retries.items():
        m.inc("remote_retries", n)
        m.inc(f"remote_retries_{cause}", n)
    for latency in stats.latencies_ms:
        m.observe("remote_request_ms", latency)
