"""Resolve the inference objects of a batch of points with as few model calls as possible.

Beam-free apart from ``Metrics`` (a no-op outside a pipeline), so it is tested directly.
The steps: parse every object into a request, dedupe by key, answer from the per-worker
cache, group the rest by model, order each group by token length so fastembed's padded
batches hold inputs of similar length, call each model once, and fan the vectors back out.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

from apache_beam.metrics import Metrics
from qdrant_client import models

from qdrant_beam.transforms.backends.local import LocalEmbedder
from qdrant_beam.transforms.backends.registry import InputKind
from qdrant_beam.transforms.cache import VectorCache
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.dead_letters import FailedRecord, Stage
from qdrant_beam.transforms.errors import ModelNotFound, PermanentError, QdrantBeamError
from qdrant_beam.transforms.images import ImageLimits, ImageReader
from qdrant_beam.transforms.options import split_options
from qdrant_beam.transforms.requests import (
    INFERENCE_TYPES,
    CallGroup,
    Request,
    to_qdrant_vector,
    to_request,
)

__all__ = [
    "METRICS_NAMESPACE",
    "EngineMetrics",
    "InferenceEngine",
    "InputFailed",
    "ModelStore",
    "assemble",
]

METRICS_NAMESPACE = "qdrant_beam.inference"
_MS_PER_S = 1000

Outcome = Any  # a raw vector, or the PermanentError that stopped it


class EngineMetrics:
    """Where the engine reports; Beam ``Metrics`` by default, a plain counter in unit tests."""

    def inc(self, name: str, n: int = 1) -> None:
        Metrics.counter(METRICS_NAMESPACE, name).inc(n)

    def observe(self, name: str, value: int) -> None:
        Metrics.distribution(METRICS_NAMESPACE, name).update(value)


class ModelStore:
    """Per-process state shared by every DoFn thread: loaded models, cache, image reader."""

    def __init__(
        self,
        catalog: ModelCatalog,
        *,
        cache_size: int = 0,
        image_limits: ImageLimits | None = None,
    ) -> None:
        self.catalog = catalog
        self.cache = VectorCache(cache_size) if cache_size > 0 else None
        self.images = ImageReader(image_limits)
        self._models: dict[CallGroup, LocalEmbedder] = {}
        self._lock = threading.Lock()

    def embedder(self, request: Request) -> LocalEmbedder:
        """The loaded model for a request's group; loads it once per process."""
        group = request.group
        loaded = self._models.get(group)
        if loaded is not None:
            return loaded
        with self._lock:
            loaded = self._models.get(group)
            if loaded is None:
                folder = self.catalog.folder(request.info, dict(group.load))
                loaded = LocalEmbedder(request.info, folder, dict(group.load))
                self._models[group] = loaded
            return loaded

    def preload(self, model: str, kind: InputKind, options: dict[str, Any]) -> None:
        """Load a model now, so a missing folder fails in ``setup``, not mid-bundle."""
        info = self.catalog.describe(model, kind)
        split = split_options(info, options)
        group = CallGroup(info.name, kind, split.load, split.is_query)
        self.embedder(Request((), group, info, None, None, 0))

    def close(self) -> None:
        self.images.close()


class InferenceEngine:
    """Computes vectors for points; one per DoFn instance, over a shared ``ModelStore``."""

    def __init__(
        self,
        store: ModelStore,
        *,
        embed_batch_size: int = 64,
        image_fetch_workers: int = 8,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self._store = store
        self._batch_size = embed_batch_size
        self._image_workers = image_fetch_workers
        self._m = metrics or EngineMetrics()

    # -- points ---------------------------------------------------------------------------
    def parse(self, point: models.PointStruct) -> list[tuple[str | None, Request]]:
        """The point's inference objects as (vector name, request); ``None`` = unnamed."""
        vector = point.vector
        if isinstance(vector, INFERENCE_TYPES):
            return [(None, to_request(vector, self._store.catalog))]
        if isinstance(vector, dict):
            return [
                (name, to_request(value, self._store.catalog))
                for name, value in vector.items()
                if isinstance(value, INFERENCE_TYPES)
            ]
        return []

    def resolve(
        self, points: Sequence[models.PointStruct]
    ) -> tuple[list[models.PointStruct], list[FailedRecord]]:
        """Points with plain vectors, and dead letters for points with a bad input."""
        parsed: list[tuple[models.PointStruct, list[tuple[str | None, Request]]]] = []
        failed: list[FailedRecord] = []
        for point in points:
            try:
                parsed.append((point, self.parse(point)))
            except QdrantBeamError as exc:
                failed.append(FailedRecord.from_exception(point, Stage.INFERENCE, exc))
        requests = [req for _, reqs in parsed for _, req in reqs]
        self.count_objects(len(requests))
        outcomes = self.compute(requests)
        done: list[models.PointStruct] = []
        for point, reqs in parsed:
            try:
                done.append(assemble(point, reqs, outcomes))
            except InputFailed as exc:
                failed.append(FailedRecord(point, Stage.INFERENCE, exc.error_type, str(exc)))
        self._m.inc("points_resolved", len(done))
        self._m.inc("dead_letters", len(failed))
        return done, failed

    def count_objects(self, n: int) -> None:
        self._m.inc("inference_objects", n)

    def count_failed(self, n: int) -> None:
        self._m.inc("dead_letters", n)

    # -- requests -------------------------------------------------------------------------
    def compute(self, requests: Sequence[Request]) -> dict[Hashable, Outcome]:
        """One outcome per unique key; duplicates and cached keys cost no model call."""
        unique: dict[Hashable, Request] = {}
        for req in requests:
            unique.setdefault(req.key, req)
        self._m.inc("unique_inputs", len(unique))
        outcomes: dict[Hashable, Outcome] = {}
        cache = self._store.cache
        if cache is not None and unique:
            outcomes.update(cache.get_many(list(unique)))
            self._m.inc("cache_hits", len(outcomes))
        groups: dict[CallGroup, list[Request]] = defaultdict(list)
        for key, req in unique.items():
            if key not in outcomes:
                groups[req.group].append(req)
        fresh: dict[Hashable, Outcome] = {}
        for group_requests in groups.values():
            fresh.update(self._run_group(group_requests))
        if cache is not None:
            cache.put_many({k: v for k, v in fresh.items() if not isinstance(v, Exception)})
        outcomes.update(fresh)
        return outcomes

    def _run_group(self, requests: list[Request]) -> dict[Hashable, Outcome]:
        try:
            embedder = self._store.embedder(requests[0])
        except ModelNotFound:
            raise  # a deployment error, not bad input: fail loudly
        except QdrantBeamError as exc:
            return {req.key: _permanent(exc) for req in requests}
        outcomes: dict[Hashable, Outcome] = {}
        inputs, ready = self._prepare_inputs(requests, outcomes)
        if not ready:
            return outcomes
        lengths = self._lengths(embedder, ready, inputs)
        order = sorted(range(len(ready)), key=lengths.__getitem__)
        ready = [ready[i] for i in order]
        inputs = [inputs[i] for i in order]
        outcomes.update(self._call(embedder, ready, inputs, ready[0].group.is_query))
        return outcomes

    def _prepare_inputs(
        self, requests: list[Request], outcomes: dict[Hashable, Outcome]
    ) -> tuple[list[Any], list[Request]]:
        if requests[0].group.input_kind is InputKind.TEXT:
            return [req.value for req in requests], list(requests)
        reader = self._store.images

        def load(req: Request) -> Any:
            try:
                return reader.load(req.value)
            except PermanentError as exc:
                return exc

        if len(requests) == 1 or self._image_workers <= 1:
            images = [load(req) for req in requests]
        else:
            with concurrent.futures.ThreadPoolExecutor(self._image_workers) as pool:
                images = list(pool.map(load, requests))
        inputs, ready = [], []
        for req, image in zip(requests, images, strict=True):
            if isinstance(image, Exception):
                outcomes[req.key] = image
            else:
                inputs.append(image)
                ready.append(req)
        return inputs, ready

    def _lengths(
        self, embedder: LocalEmbedder, ready: list[Request], inputs: list[Any]
    ) -> list[int]:
        meter = embedder.meter
        if meter is None or ready[0].group.input_kind is not InputKind.TEXT:
            return [req.size for req in ready]
        lengths = meter.lengths(inputs)
        self._m.inc("truncated_inputs", sum(1 for n in lengths if n > meter.max_length))
        return lengths

    def _call(
        self, embedder: LocalEmbedder, ready: list[Request], inputs: list[Any], is_query: bool
    ) -> dict[Hashable, Outcome]:
        started = time.perf_counter()
        self._m.inc("model_calls")
        self._m.inc("model_inputs", len(inputs))
        try:
            vectors = embedder.embed(inputs, is_query=is_query, batch_size=self._batch_size)
            result: dict[Hashable, Outcome] = {
                r.key: v for r, v in zip(ready, vectors, strict=True)
            }
        except Exception:  # isolate the input the model cannot take, keep the rest
            result = {}
            for req, value in zip(ready, inputs, strict=True):
                self._m.inc("model_calls")
                try:
                    result[req.key] = embedder.embed([value], is_query=is_query, batch_size=1)[0]
                except Exception as exc:
                    result[req.key] = PermanentError(
                        f"model {embedder.info.name!r} failed on this input: "
                        f"{type(exc).__name__}: {exc}"
                    )
        self._m.observe("model_call_ms", int((time.perf_counter() - started) * _MS_PER_S))
        return result


def _permanent(exc: QdrantBeamError) -> PermanentError:
    if isinstance(exc, PermanentError):
        return exc
    return PermanentError(str(exc))


class InputFailed(PermanentError):
    """One of a point's inputs failed; carries the original error's type name."""

    def __init__(self, vector: str | None, cause: Exception) -> None:
        where = f"vector {vector!r}" if vector is not None else "vector"
        super().__init__(f"{where}: {cause}")
        self.error_type = type(cause).__name__


def assemble(
    point: models.PointStruct,
    requests: list[tuple[str | None, Request]],
    outcomes: dict[Hashable, Outcome],
) -> models.PointStruct:
    """The point with each inference object replaced by its vector; raises on a failed input."""
    if not requests:
        return point
    resolved: dict[str | None, Any] = {}
    for name, req in requests:
        outcome = outcomes[req.key]
        if isinstance(outcome, Exception):
            raise InputFailed(name, outcome)
        try:
            resolved[name] = to_qdrant_vector(req.info, outcome, req.mrl)
        except PermanentError as exc:
            raise InputFailed(name, exc) from None
    if None in resolved:
        vector: Any = resolved[None]
    else:
        vector = {**point.vector, **resolved}  # type: ignore[dict-item]
    return models.PointStruct(id=point.id, vector=vector, payload=point.payload)
