"""``WriteToQdrant``: points in; write results and dead letters out.

Usage::

    written, dead = points | WriteToQdrant(QdrantTarget(url=...), spec=spec)

Before the pipeline runs, the collection is created from the spec (or explicit vector params)
or checked against it. On the workers, each DoFn writes batches bounded by points and bytes,
with a bounded, adaptive number of requests in flight (``process`` blocks when the window is
full), retries with backoff, and bisection of rejected batches.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PCollection
from apache_beam.transforms.display import DisplayDataItem
from qdrant_client import models

from qdrant_beam.connectors.clock import Clock
from qdrant_beam.connectors.collection import CollectionSchema, ensure_collection
from qdrant_beam.connectors.inflight import InFlight, windowed
from qdrant_beam.connectors.retry import RetryPolicy
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.window import AimdWindow
from qdrant_beam.connectors.writer import QdrantPointWriter, RetryingWriter, WriteReport
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.errors import InvalidRecord, SpecError
from qdrant_beam.transforms.outputs import AnnotatedTransform
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["METRICS_NAMESPACE", "WriteBatchResult", "WriteOutputs", "WriteToQdrant"]

METRICS_NAMESPACE = "qdrant_beam.write"
_MS_PER_S = 1000
_BYTES_PER_FLOAT = 10  # "0.12345678," in JSON
_BYTES_PER_SPARSE_ENTRY = 20


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


def point_bytes(point: models.PointStruct) -> int:
    """Estimated JSON size of a point: bounds request bodies without serialising twice."""
    size = 64
    vector = point.vector
    values = vector.values() if isinstance(vector, dict) else [vector]
    for value in values:
        if isinstance(value, models.SparseVector):
            size += _BYTES_PER_SPARSE_ENTRY * len(value.indices)
        elif isinstance(value, list) and value and isinstance(value[0], list):
            size += _BYTES_PER_FLOAT * sum(len(row) for row in value)
        elif isinstance(value, list):
            size += _BYTES_PER_FLOAT * len(value)
        else:
            size += 1024  # an inference object for server-side inference
    if point.payload:
        size += len(json.dumps(point.payload, default=str))
    return size


def has_inference_objects(point: Any) -> bool:
    vector = getattr(point, "vector", None)
    values = vector.values() if isinstance(vector, dict) else [vector]
    return any(isinstance(v, _INFERENCE_TYPES) for v in values)


_INFERENCE_TYPES = (models.Document, models.Image, models.InferenceObject)


def _valid_id(pid: Any) -> bool:
    if isinstance(pid, bool) or pid is None:
        return False
    if isinstance(pid, int):
        return 0 <= pid < 2**64
    import uuid

    try:
        uuid.UUID(str(pid))
    except ValueError:
        return False
    return True


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
        self.cumulative_throttling = Metrics.counter(
            METRICS_NAMESPACE, "cumulativeThrottlingSeconds"
        )
        self.latency = Metrics.distribution(METRICS_NAMESPACE, "request_latency_ms")
        self.window = Metrics.gauge(METRICS_NAMESPACE, "window_size")
        self.in_flight = Metrics.distribution(METRICS_NAMESPACE, "in_flight")

    def retry(self, cause: str, n: int) -> None:
        Metrics.counter(METRICS_NAMESPACE, f"retries_{cause}").inc(n)


@dataclasses.dataclass(frozen=True)
class SinkConfig:
    """Picklable config of the write DoFn: no clients, no secrets."""

    target: QdrantTarget
    collection: str
    wait: bool
    ordering: str | None
    policy: RetryPolicy
    window: tuple[int, int, int]  # minimum, initial, maximum
    seed: int | None
    inference: str = "local"


class _WriteDoFn(beam.DoFn):
    """Thin: setup connects; process hands a batch to the in-flight writer and emits what is
    done; finish_bundle waits for the rest."""

    def __init__(self, config: SinkConfig, clock: Clock | None) -> None:
        self._config = config
        self._clock = clock

    def setup(self) -> None:
        self._m = _SinkMetrics()
        self._client: Any = None
        self._inflight: InFlight[list[models.PointStruct], WriteReport] | None = None

    def _start(self) -> InFlight[list[models.PointStruct], WriteReport]:
        """Connects on the first batch: a run with nothing to write (an unchanged reindex)
        opens no client."""
        if self._inflight is not None:
            return self._inflight
        config = self._config
        server = config.inference == "server"
        self._client = (
            config.target.connect(cloud_inference=True) if server else config.target.connect()
        )
        minimum, initial, maximum = config.window
        inflight: InFlight[list[models.PointStruct], WriteReport] = InFlight(
            self._write, AimdWindow(minimum=minimum, initial=initial, maximum=maximum)
        )
        ordering = models.WriteOrdering(config.ordering) if config.ordering else None
        self._writer = RetryingWriter(
            QdrantPointWriter(
                self._client,
                config.collection,
                wait=config.wait,
                ordering=ordering,
                lock=config.target.write_lock(),
                direct_rest=config.target.url is not None and not config.target.prefer_grpc,
            ),
            config.policy,
            clock=self._clock,
            rng=random.Random(config.seed),
            listener=inflight,
        )
        self._inflight = inflight
        return inflight

    def _write(self, points: list[models.PointStruct]) -> WriteReport:
        return self._writer.write(points)

    def process(
        self,
        batch: list[models.PointStruct],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        good: list[models.PointStruct] = []
        for point in batch:
            if self._config.inference == "local" and has_inference_objects(point):
                self._m.dead.inc()
                yield beam.pvalue.TaggedOutput(
                    DEAD_LETTERS,
                    FailedRecord.from_exception(
                        point,
                        Stage.WRITE,
                        InvalidRecord(
                            "point still holds inference objects: resolve them first "
                            "(ResolveInference), or write with inference='server' to let "
                            "Qdrant embed them"
                        ),
                    ),
                )
            elif _valid_id(getattr(point, "id", None)):
                good.append(point)
            else:
                self._m.dead.inc()
                yield beam.pvalue.TaggedOutput(
                    DEAD_LETTERS,
                    FailedRecord.from_exception(
                        point,
                        Stage.WRITE,
                        InvalidRecord(
                            f"point id {getattr(point, 'id', None)!r} is not an unsigned integer "
                            f"or a UUID; random ids are never assigned (they would duplicate on "
                            f"retry)"
                        ),
                    ),
                )
        if good:
            inflight = self._start()
            blocked = inflight.blocked_s
            inflight.submit(good, tag=(window, timestamp))
            self._m.blocked_ms.inc(int((inflight.blocked_s - blocked) * _MS_PER_S))
            self._m.window.set(inflight.window_size)
            self._m.in_flight.update(inflight.in_flight)
        if self._inflight is None:
            return
        for (win, ts), outcome in self._inflight.completed():
            for value in self._outputs(outcome):
                yield windowed(value, win, ts)

    def finish_bundle(self) -> Iterator[Any]:
        if self._inflight is None:
            return
        for (win, ts), outcome in self._inflight.flush():
            for value in self._outputs(outcome):
                yield windowed(value, win, ts)

    def _outputs(self, outcome: WriteReport | BaseException) -> Iterator[Any]:
        if isinstance(outcome, BaseException):
            raise outcome  # a bug, not a Qdrant error: fail the bundle so Beam retries it
        m = self._m
        m.requests.inc(outcome.requests)
        m.bisections.inc(outcome.bisections)
        for cause, n in outcome.retries.items():
            m.retry(cause, n)
        if outcome.throttled_s:
            m.throttled_ms.inc(int(outcome.throttled_s * _MS_PER_S))
            m.cumulative_throttling.inc(math.ceil(outcome.throttled_s))
        for latency in outcome.latencies_ms:
            m.latency.update(latency)
        if outcome.written:
            m.points.inc(len(outcome.written))
            m.batches.inc()
            yield WriteBatchResult(
                self._config.collection, tuple(outcome.written), outcome.requests
            )
        for point, error, attempts in outcome.failed:
            m.dead.inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS, FailedRecord.from_exception(point, Stage.WRITE, error, attempts)
            )

    def teardown(self) -> None:
        inflight = getattr(self, "_inflight", None)
        if inflight is not None:
            inflight.close()
        if getattr(self, "_client", None) is not None:
            self._config.target.release(self._client)
            self._client = None


class WriteToQdrant(AnnotatedTransform):
    """Write ``PointStruct``s (named dense, sparse and multi-vectors) to a Qdrant collection.

    Args:
        target: where to write (server URL, or embedded ``path``/``:memory:``).
        spec: creates or checks the collection from the spec's vectors.
        schema: the same from explicit params, when there is no spec.
        collection: overrides the spec's collection name.
        create_collection: create a missing collection (else fail).
        upsert_batch_size: points per request (Qdrant suggests 64-256).
        upsert_max_bytes: bound on the estimated request body (Qdrant allows 32 MiB).
        wait: ``wait=true``: a request succeeds only once the points are applied.
        ordering: ``weak`` | ``medium`` | ``strong`` write ordering.
        retry_policy: attempts, backoff and deadline of transient failures.
        window_min / window_initial / window_max: requests in flight per worker (AIMD).
        clock: for tests; the clock retries sleep on.
        seed: seeds the backoff jitter, for reproducible tests.
        inference: ``"server"`` sends points whose vectors are inference objects as they are,
            for Qdrant to embed (Qdrant Cloud inference, as qdrant-client's
            ``cloud_inference=True``); needs a server URL.
    """

    def __init__(
        self,
        target: QdrantTarget,
        *,
        spec: PointsSpec | None = None,
        schema: CollectionSchema | None = None,
        collection: str | None = None,
        create_collection: bool = True,
        upsert_batch_size: int = 128,
        upsert_max_bytes: int = 8 * 1024 * 1024,
        wait: bool = True,
        ordering: str | None = None,
        retry_policy: RetryPolicy | None = None,
        window_min: int = 1,
        window_initial: int = 4,
        window_max: int = 8,
        clock: Clock | None = None,
        seed: int | None = None,
        manage_collection: bool = True,
        inference: str = "local",
    ) -> None:
        super().__init__()
        if inference not in ("local", "server"):
            raise SpecError(f"inference must be 'local' or 'server', got {inference!r}")
        if inference == "server" and target.url is None:
            raise SpecError(
                "server-side inference needs a Qdrant server that embeds (QdrantTarget(url=...)); "
                "the embedded local mode cannot, so resolve the vectors in the pipeline instead"
            )
        if spec is not None and schema is None:
            schema = CollectionSchema.from_spec(spec, collection)
        name = collection or (schema.name if schema else None)
        if name is None:
            raise SpecError("WriteToQdrant needs a collection: pass spec=, schema= or collection=")
        if not 1 <= upsert_batch_size <= 10_000 or upsert_max_bytes < 1024:
            raise SpecError(
                f"upsert_batch_size must be in 1..10000 and upsert_max_bytes >= 1024, got "
                f"{upsert_batch_size} and {upsert_max_bytes}"
            )
        if ordering not in (None, "weak", "medium", "strong"):
            raise SpecError(f"ordering must be weak, medium or strong, got {ordering!r}")
        AimdWindow(minimum=window_min, initial=window_initial, maximum=window_max)  # validates
        self._target = target
        self._schema = dataclasses.replace(schema, name=name) if schema else None
        self._create = create_collection
        self._manage = manage_collection
        self._batch_size = upsert_batch_size
        self._max_bytes = upsert_max_bytes
        self._config = SinkConfig(
            target,
            name,
            wait,
            ordering,
            retry_policy or RetryPolicy(),
            (window_min, window_initial, window_max),
            seed,
            inference,
        )
        self._clock = clock
        self.collection_status: str | None = None

    def display_data(self) -> dict[str, Any]:
        return {
            "target": DisplayDataItem(self._target.describe(), label="Qdrant"),
            "collection": DisplayDataItem(self._config.collection, label="Collection"),
            "upsert_batch_size": self._batch_size,
            "window_max": self._config.window[2],
        }

    def prepare_collection(self) -> str | None:
        """Create or check the collection now, on the launching machine."""
        if self._schema is None or not self._manage:
            return None
        with self._target.named_in_errors():
            client = self._target.connect()
            try:
                return ensure_collection(client, self._schema, create=self._create)
            finally:
                self._target.release(client)

    def expand(self, pcoll: PCollection) -> WriteOutputs:
        _refuse_shared_local_folder(self._target, pcoll.pipeline.options)
        self.collection_status = self.prepare_collection()
        per_byte = self._batch_size / self._max_bytes
        outputs = (
            pcoll
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=self._batch_size,
                max_batch_size=self._batch_size,
                element_size_fn=lambda p: max(1, math.ceil(point_bytes(p) * per_byte)),
            )
            | "Upsert"
            >> beam.ParDo(_WriteDoFn(self._config, self._clock)).with_outputs(
                DEAD_LETTERS, main="written"
            )
        )
        return WriteOutputs(outputs.written, outputs[DEAD_LETTERS])


def _refuse_shared_local_folder(target: QdrantTarget, options: Any) -> None:
    """Embedded storage is one process per folder: refuse runners that fork workers."""
    if target.path is None and target.location is None:
        return
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = str(options.view_as(StandardOptions).runner or "")
    mode = options.view_as(DirectOptions).direct_running_mode
    workers = options.view_as(DirectOptions).direct_num_workers
    multi = (
        "Dataflow" in runner
        or "Flink" in runner
        or "Spark" in runner
        or "Portable" in runner
        or "Prism" in runner
        or (mode == "multi_processing" and workers != 1)
    )
    if multi:
        where = target.path or ":memory:"
        raise SpecError(
            f"the embedded Qdrant ({where}) lives in one process, but runner {runner or 'direct'} "
            f"({mode}) runs workers in several processes. Write to a Qdrant server instead "
            f"(QdrantTarget(url=...)), or run on FnApiRunner or DirectRunner with "
            f"--direct_running_mode=in_memory or multi_threading."
        )
