"""The one DoFn from inputs to vectors: batches in, points and dead letters out.

``process`` prepares a batch (``Preparation``: points, records or hashed records to mapped
records) and hands the mapped records to its inference: ``LocalInference`` computes the
vectors here, ``ServerInference`` leaves the inference objects for Qdrant to embed. With more
than one batch in flight (remote providers spend their time waiting on the network), batches
resolve on threads while ``process`` takes the next; ``finish_bundle`` waits for them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.shared import Shared
from qdrant_client import models

from qdrant_beam.io.limiter import InFlight, Limiter
from qdrant_beam.io.window import Concurrency
from qdrant_beam.transforms.backends.providers import ProviderConfig
from qdrant_beam.transforms.backends.registry import InputKind
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.engine import InferenceEngine
from qdrant_beam.transforms.images import ImageLimits
from qdrant_beam.transforms.mapping import MappedRecord
from qdrant_beam.transforms.metrics import EngineMetrics, RecordingMetrics
from qdrant_beam.transforms.outputs import windowed
from qdrant_beam.transforms.prepare import Preparation
from qdrant_beam.transforms.store import ModelStore
from qdrant_beam.transforms.workers import runner_workers, shared_providers

__all__ = ["EmbedDoFn", "Inference", "LocalInference", "ServerInference", "StoreConfig"]

Resolved = tuple[list[models.PointStruct], list[FailedRecord]]


class StoreConfig(NamedTuple):
    """Everything a worker needs to rebuild the model store (config, not objects; no keys)."""

    catalog: ModelCatalog
    cache_size: int
    image_limits: ImageLimits
    embed_batch_size: int
    preload: tuple[tuple[str, InputKind, tuple[tuple[str, Any], ...]], ...]
    providers: tuple[tuple[str, ProviderConfig], ...] = ()

    def with_runner_workers(self, options: PipelineOptions) -> StoreConfig:
        """Every provider's window told the runner's worker count, where it names none
        (``transforms.workers``): the workers together keep to the account's limits."""
        shared = shared_providers(dict(self.providers), runner_workers(options))
        return self._replace(providers=tuple(shared.items()))


class Inference(Protocol):
    """What becomes of a batch of mapped records: a strategy of the DoFn, chosen by config."""

    def setup(self, shared: Shared) -> None: ...

    def resolve(self, records: Sequence[MappedRecord], metrics: EngineMetrics) -> Resolved: ...


class LocalInference:
    """Vectors computed in the pipeline, by the engine over the worker's shared store."""

    def __init__(self, config: StoreConfig) -> None:
        self._config = config

    def setup(self, shared: Shared) -> None:
        config = self._config
        store: ModelStore = shared.acquire(
            lambda: ModelStore(
                config.catalog,
                cache_size=config.cache_size,
                image_limits=config.image_limits,
                providers=dict(config.providers),
            ),
            tag=repr(config),
        )
        for model, kind, options in config.preload:
            store.preload(model, kind, dict(options))
        self._store = store  # a strong reference keeps the shared store alive

    def resolve(self, records: Sequence[MappedRecord], metrics: EngineMetrics) -> Resolved:
        engine = InferenceEngine(
            self._store, embed_batch_size=self._config.embed_batch_size, metrics=metrics
        )
        return engine.resolve(records)


class ServerInference:
    """Qdrant embeds (Qdrant Cloud inference): points keep their inference objects; only those
    Qdrant could never embed (no model, empty text, no image) go to dead letters."""

    def setup(self, shared: Shared) -> None:
        pass

    def resolve(self, records: Sequence[MappedRecord], metrics: EngineMetrics) -> Resolved:
        points: list[models.PointStruct] = []
        failed: list[FailedRecord] = []
        for record in records:
            problem = next(filter(None, (_server_problem(i) for i in record.inputs)), None)
            if problem is None:
                points.append(record.to_point())
            else:
                failed.append(FailedRecord(record.to_point(), Stage.INFERENCE, *problem))
        return points, failed


def _server_problem(vector_input: Any) -> tuple[str, str] | None:
    name, kind, value, model, _ = vector_input
    where = f"vector {name!r}" if name is not None else "vector"
    if not model:
        problem = "inference object has no model"
    elif value is None and kind is InputKind.IMAGE:
        problem = "image input is empty"
    elif value is None:
        problem = "inference object has no input"
    elif kind is InputKind.TEXT and (not isinstance(value, str) or not value.strip()):
        problem = "document text is empty or whitespace"
    elif kind is InputKind.IMAGE and isinstance(value, str) and not value.strip():
        problem = "image input is empty"
    else:
        return None
    return "InvalidRecord", f"{where}: {problem}"


class EmbedDoFn(beam.DoFn):
    """Thin: prepare the batch, resolve it (here or on a thread), emit points and dead letters."""

    def __init__(
        self,
        prepare: Preparation,
        inference: Inference,
        shared: Shared,
        batches_in_flight: int = 1,
    ) -> None:
        self._prepare = prepare
        self._inference = inference
        self._shared = shared
        self._batches_in_flight = batches_in_flight

    def setup(self) -> None:
        self._prepare.setup()
        self._inference.setup(self._shared)
        self._metrics = EngineMetrics()
        self._inflight: InFlight[Sequence[MappedRecord], Any] | None = None
        if self._batches_in_flight > 1:
            limiter = Limiter(Concurrency.fixed(self._batches_in_flight))
            self._inflight = InFlight(self._off_thread, limiter, name="qdrant-beam-embed")

    def _resolve(self, records: Sequence[MappedRecord], metrics: EngineMetrics) -> Any:
        points, failed = self._inference.resolve(records, metrics)
        return self._prepare.finish(points, failed)

    def _off_thread(self, records: Sequence[MappedRecord]) -> Any:
        recorder = RecordingMetrics()  # Beam's metric containers are per thread
        points, failed = self._resolve(records, recorder)
        return points, failed, recorder

    def process(
        self,
        batch: list[Any],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        mapped, unmapped = self._prepare.prepare(batch)
        for record in unmapped:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, record)
        if not mapped:
            return
        if self._inflight is None:
            points, failed = self._resolve(mapped, self._metrics)
            yield from points
            for record in failed:
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, record)
            return
        self._inflight.submit(mapped, tag=(window, timestamp))
        yield from self._emit(self._inflight.completed())

    def finish_bundle(self) -> Iterator[Any]:
        if self._inflight is not None:
            yield from self._emit(self._inflight.flush())

    def _emit(self, done: list[tuple[Any, Any]]) -> Iterator[Any]:
        for (win, ts), outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # a deployment error (no model, refused key): fail the bundle
            points, failed, recorder = outcome
            recorder.replay(self._metrics)
            for point in points:
                yield windowed(point, win, ts)
            for record in failed:
                yield windowed(beam.pvalue.TaggedOutput(DEAD_LETTERS, record), win, ts)

    def teardown(self) -> None:
        inflight = getattr(self, "_inflight", None)
        if inflight is not None:
            inflight.close()
