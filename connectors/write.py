"""``WriteToQdrant``: points (or records' chunk points, ``ChunkGroup``) in; write results and
dead letters out.

Usage::

    written, dead = points | WriteToQdrant(QdrantTarget(url=...), spec=spec)
    written, dead = points | WriteToQdrant(target, WriteConfig(upsert_batch_size=256), spec=spec)

Before the pipeline runs, the collection is created from the spec (or explicit vector params)
or checked against it. On the workers, each DoFn writes batches bounded by points and bytes,
with a bounded, adaptive number of requests in flight (``process`` blocks when the window is
full), retries with backoff, and bisection of rejected batches.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PCollection
from apache_beam.transforms.display import DisplayDataItem
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from qdrant_client import models

from qdrant_beam.connectors.collection import CollectionSchema, ensure_collection
from qdrant_beam.connectors.points import has_inference_objects, point_bytes, valid_id
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.writer import QdrantPointWriter, RetryingWriter, WriteReport
from qdrant_beam.io.clock import Clock
from qdrant_beam.io.errors import InvalidRecord, SpecError
from qdrant_beam.io.limiter import InFlight, Limiter
from qdrant_beam.io.retry import RetryPolicy
from qdrant_beam.io.window import Concurrency
from qdrant_beam.transforms.chunk_points import ChunkGroup
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.outputs import AnnotatedTransform, windowed
from qdrant_beam.transforms.spec import PointsSpec, problems
from qdrant_beam.transforms.workers import runner_workers, shared_with_workers

__all__ = ["METRICS_NAMESPACE", "WriteBatchResult", "WriteConfig", "WriteOutputs", "WriteToQdrant"]

METRICS_NAMESPACE = "qdrant_beam.write"
_MS_PER_S = 1000


class WriteConfig(BaseModel):
    """How ``WriteToQdrant`` writes; picklable, no clients and no secrets.

    The keyword arguments of ``WriteToQdrant`` are these fields; ``retry_policy`` and
    ``window_min``/``window_initial``/``window_max`` are still accepted for ``retry`` and
    ``concurrency``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    collection: str | None = Field(None, description="Overrides the spec's collection name.")
    create_collection: bool = Field(True, description="Create a missing collection (else fail).")
    manage_collection: bool = Field(True, description="Create or check it before the run.")
    upsert_batch_size: int = Field(128, ge=1, le=10_000, description="Points per request.")
    upsert_max_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Bound on the estimated request body."
    )
    wait: bool = Field(True, description="A request succeeds only once the points are applied.")
    ordering: Literal["weak", "medium", "strong"] | None = Field(None, description="Ordering.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Transient failures.")
    concurrency: Concurrency = Field(
        default_factory=Concurrency, description="Requests in flight per worker (AIMD)."
    )
    seed: int | None = Field(None, description="Seeds the backoff jitter (tests).")
    inference: Literal["local", "server"] = Field(
        "local", description="'server': send inference objects for Qdrant to embed."
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "retry_policy" in data:
            data["retry"] = data.pop("retry_policy") or RetryPolicy()
        window = {
            key: data.pop(f"window_{key}")
            for key in ("min", "initial", "max")
            if f"window_{key}" in data
        }
        if window:
            data["concurrency"] = Concurrency(
                initial=window.get("initial", 4),
                minimum=window.get("min", 1),
                maximum=window.get("max", 8),
            )
        return data


@dataclasses.dataclass(frozen=True)
class WriteBatchResult:
    """One written batch: its point ids and the requests it took."""

    collection: str
    ids: tuple[Any, ...]
    requests: int


class WriteOutputs(NamedTuple):
    """Unpacks as ``written, dead_letters``."""

    written: PCollection
    dead_letters: PCollection


class _SinkMetrics:
    def __init__(self) -> None:
        counter = lambda name: Metrics.counter(METRICS_NAMESPACE, name)  # noqa: E731
        self.points = counter("points_written")
        self.batches = counter("batches_written")
        self.requests = counter("requests")
        self.dead = counter("dead_letters")
        self.bisections = counter("bisections")
        self.throttled_ms = counter("throttled_ms")
        self.blocked_ms = counter("blocked_ms")
        # Beam's own name: runners read it to avoid scaling up into a throttled backend.
        self.cumulative_throttling = counter("cumulativeThrottlingSeconds")
        self.latency = Metrics.distribution(METRICS_NAMESPACE, "request_latency_ms")
        self.window = Metrics.gauge(METRICS_NAMESPACE, "window_size")
        self.in_flight = Metrics.distribution(METRICS_NAMESPACE, "in_flight")

    def retry(self, cause: str, n: int) -> None:
        Metrics.counter(METRICS_NAMESPACE, f"retries_{cause}").inc(n)

    def report(self, outcome: WriteReport) -> None:
        self.requests.inc(outcome.requests)
        self.bisections.inc(outcome.bisections)
        for cause, n in outcome.retries.items():
            self.retry(cause, n)
        if outcome.throttled_s:
            self.throttled_ms.inc(int(outcome.throttled_s * _MS_PER_S))
            self.cumulative_throttling.inc(math.ceil(outcome.throttled_s))
        for latency in outcome.latencies_ms:
            self.latency.update(latency)


def element_bytes(element: Any) -> int:
    """Estimated JSON size of a point, or of a record's chunk points together."""
    if isinstance(element, ChunkGroup):
        return sum(point_bytes(p) for p in element.points)
    return point_bytes(element)


def _refusal(point: Any, inference: str) -> InvalidRecord | None:
    """Why a point cannot be sent at all, if it cannot."""
    if inference == "local" and has_inference_objects(point):
        return InvalidRecord(
            "point still holds inference objects: resolve them first (ResolveInference), or "
            "write with inference='server' to let Qdrant embed them"
        )
    if not valid_id(getattr(point, "id", None)):
        return InvalidRecord(
            f"point id {getattr(point, 'id', None)!r} is not an unsigned integer or a UUID; "
            f"random ids are never assigned (they would duplicate on retry)"
        )
    return None


class _WriteDoFn(beam.DoFn):
    """Thin: the first batch connects; process hands a batch to the in-flight writer and
    emits what is done; finish_bundle waits for the rest."""

    def __init__(
        self, target: QdrantTarget, collection: str, config: WriteConfig, clock: Clock | None
    ) -> None:
        self._target = target
        self._collection = collection
        self._config = config
        self._clock = clock

    def setup(self) -> None:
        self._m = _SinkMetrics()
        self._client: Any = None
        self._inflight: InFlight[Any, WriteReport] | None = None

    def _start(self) -> InFlight[Any, WriteReport]:
        """Connects on the first batch: a run with nothing to write (an unchanged reindex)
        opens no client."""
        if self._inflight is not None:
            return self._inflight
        config, target = self._config, self._target
        server = config.inference == "server"
        self._client = target.connect(cloud_inference=True) if server else target.connect()
        # the writer's clock and seed: pauses and pacing are as sleep-free in tests as retries
        limiter = Limiter(config.concurrency, clock=self._clock, rng=random.Random(config.seed))
        writer = RetryingWriter(
            QdrantPointWriter(
                self._client,
                self._collection,
                wait=config.wait,
                ordering=models.WriteOrdering(config.ordering) if config.ordering else None,
                lock=target.write_lock(),
                direct_rest=target.url is not None and not target.prefer_grpc,
            ),
            config.retry,
            clock=self._clock,
            rng=random.Random(config.seed),
            listener=limiter,
        )
        self._inflight = InFlight(
            lambda work: writer.write(*work), limiter, name="qdrant-beam-write"
        )
        return self._inflight

    def process(
        self,
        batch: list[Any],  # PointStruct or ChunkGroup
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        good: list[models.PointStruct] = []
        stale: list[tuple[str, int]] = []
        for element in batch:
            group = element if isinstance(element, ChunkGroup) else None
            points = group.points if group is not None else [element]
            refusals = [_refusal(point, self._config.inference) for point in points]
            if not any(refusals):
                good.extend(points)
                if group is not None:
                    stale.append((group.parent_id, len(group.points)))
                continue
            for point, refusal in zip(points, refusals, strict=True):  # a record as a whole
                error = refusal or InvalidRecord("another chunk of this record was refused")
                self._m.dead.inc()
                failed = FailedRecord.from_exception(point, Stage.WRITE, error)
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, failed)
        if good:
            inflight = self._start()
            limiter = inflight.limiter
            blocked = limiter.blocked_s
            inflight.submit((good, stale), tag=(window, timestamp))
            self._m.blocked_ms.inc(int((limiter.blocked_s - blocked) * _MS_PER_S))
            self._m.window.set(limiter.size)
            self._m.in_flight.update(limiter.in_flight)
        if self._inflight is not None:
            yield from self._emit(self._inflight.completed())

    def finish_bundle(self) -> Iterator[Any]:
        if self._inflight is not None:
            yield from self._emit(self._inflight.flush())

    def _emit(self, done: list[tuple[Any, WriteReport | BaseException]]) -> Iterator[Any]:
        for (win, ts), outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # a bug, not a Qdrant error: fail the bundle so Beam retries it
            self._m.report(outcome)
            if outcome.written:
                self._m.points.inc(len(outcome.written))
                self._m.batches.inc()
                result = WriteBatchResult(
                    self._collection, tuple(outcome.written), outcome.requests
                )
                yield windowed(result, win, ts)
            for point, error, attempts in outcome.failed:
                self._m.dead.inc()
                failed = FailedRecord.from_exception(point, Stage.WRITE, error, attempts)
                yield windowed(beam.pvalue.TaggedOutput(DEAD_LETTERS, failed), win, ts)

    def teardown(self) -> None:
        inflight = getattr(self, "_inflight", None)
        if inflight is not None:
            inflight.close()
        if getattr(self, "_client", None) is not None:
            self._target.release(self._client)
            self._client = None


class WriteToQdrant(AnnotatedTransform):
    """Write ``PointStruct``s (named dense, sparse and multi-vectors) to a Qdrant collection.

    Args:
        target: where to write (server URL, or embedded ``path``/``:memory:``).
        config: how to write (``WriteConfig``); or give its fields as keyword arguments.
        spec: creates or checks the collection from the spec's vectors.
        schema: the same from explicit params, when there is no spec.
        clock: for tests; the clock retries sleep on.
        **settings: ``WriteConfig`` fields (``upsert_batch_size=256``, ``wait=False``, ...).
    """

    def __init__(
        self,
        target: QdrantTarget,
        config: WriteConfig | None = None,
        *,
        spec: PointsSpec | None = None,
        schema: CollectionSchema | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        try:
            if config is None or settings:
                base = config.model_dump() if config is not None else {}
                config = WriteConfig.model_validate({**base, **settings})
        except ValidationError as exc:
            raise SpecError(f"WriteToQdrant: {'; '.join(problems(exc))}") from None
        if config.inference == "server" and target.url is None:
            raise SpecError(
                "server-side inference needs a Qdrant server that embeds (QdrantTarget(url=...)); "
                "the embedded local mode cannot, so resolve the vectors in the pipeline instead"
            )
        if spec is not None and schema is None:
            schema = CollectionSchema.from_spec(spec, config.collection)
        name = config.collection or (schema.name if schema else None)
        if name is None:
            raise SpecError("WriteToQdrant needs a collection: pass spec=, schema= or collection=")
        self._target = target
        self._config = config
        self._collection = name
        self._schema = dataclasses.replace(schema, name=name) if schema else None
        self._clock = clock
        self.collection_status: str | None = None

    @property
    def config(self) -> WriteConfig:
        return self._config

    def display_data(self) -> dict[str, Any]:
        return {
            "target": DisplayDataItem(self._target.describe(), label="Qdrant"),
            "collection": DisplayDataItem(self._collection, label="Collection"),
            "upsert_batch_size": self._config.upsert_batch_size,
            "window_max": self._config.concurrency.maximum,
        }

    def prepare_collection(self) -> str | None:
        """Create or check the collection now, on the launching machine."""
        if self._schema is None or not self._config.manage_collection:
            return None
        with self._target.named_in_errors():
            client = self._target.connect()
            try:
                return ensure_collection(
                    client, self._schema, create=self._config.create_collection
                )
            finally:
                self._target.release(client)

    def expand(self, pcoll: PCollection) -> WriteOutputs:
        options = pcoll.pipeline.options
        self._target.check_runner(options)
        self.collection_status = self.prepare_collection()
        config = self._config
        shared = shared_with_workers(config.concurrency, runner_workers(options))
        if shared != config.concurrency:  # the runner's worker count, unless one was given
            config = config.model_copy(update={"concurrency": shared})
        per_byte = config.upsert_batch_size / config.upsert_max_bytes
        outputs = (
            pcoll
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=config.upsert_batch_size,
                max_batch_size=config.upsert_batch_size,
                element_size_fn=lambda e: max(1, math.ceil(element_bytes(e) * per_byte)),
            )
            | "Upsert"
            >> beam.ParDo(
                _WriteDoFn(self._target, self._collection, config, self._clock)
            ).with_outputs(DEAD_LETTERS, main="written")
        )
        return WriteOutputs(outputs.written, outputs[DEAD_LETTERS])
