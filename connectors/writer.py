"""Writing one batch of points: the upsert, retries with backoff, and bisection of rejects.

``QdrantPointWriter`` makes one request. ``RetryingWriter`` wraps any ``PointWriter`` the way
httpx transports wrap transports: it retries transient errors by policy, and when Qdrant
rejects a batch's content (a 4xx) it splits the batch in halves until the bad points are
isolated, so every other point lands and only the bad ones go to dead letters.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import random
import threading
import time
from typing import Any, Protocol

from qdrant_client import models

from qdrant_beam.connectors.qdrant_errors import RejectedPoints, translate_errors
from qdrant_beam.io.clock import Clock
from qdrant_beam.io.errors import QdrantBeamError
from qdrant_beam.io.retry import Retrying, RetryListener, RetryPolicy, is_throttle, retry_cause
from qdrant_beam.transforms.chunk_points import INDEX_FIELD, PARENT_FIELD

__all__ = ["PointWriter", "QdrantPointWriter", "RetryingWriter", "WriteReport"]

_MS_PER_S = 1000


class PointWriter(Protocol):
    def write(self, points: list[models.PointStruct]) -> None:
        """Write all points or raise a ``QdrantBeamError``."""

    def delete_stale_chunks(self, stale: list[tuple[str, int]]) -> None:
        """Delete records' chunk points past their new count, or raise."""


class QdrantPointWriter:
    """One upsert request per call, with ``wait`` and an explicit write ordering."""

    def __init__(
        self,
        client: Any,
        collection: str,
        *,
        wait: bool = True,
        ordering: models.WriteOrdering | None = None,
        lock: threading.Lock | None = None,
        direct_rest: bool = False,
    ) -> None:
        self._client = client
        self._direct_rest = direct_rest
        self._collection = collection
        self._wait = wait
        self._ordering = ordering
        self._lock = lock or contextlib.nullcontext()

    def write(self, points: list[models.PointStruct]) -> None:
        with self._lock, translate_errors():
            if self._direct_rest:
                # The raw REST API: skips qdrant-client's per-point inference inspection, a
                # fifth of the client's CPU per batch, for points that hold plain vectors.
                self._client.http.points_api.upsert_points(
                    collection_name=self._collection,
                    wait=self._wait,
                    ordering=self._ordering,
                    point_insert_operations=models.PointsList(points=points),
                )
            else:
                self._client.upsert(
                    self._collection, points=points, wait=self._wait, ordering=self._ordering
                )

    def delete_stale_chunks(self, stale: list[tuple[str, int]]) -> None:
        """Delete, for each (parent id, chunk count), that record's chunks past the count."""
        selector = models.FilterSelector(
            filter=models.Filter(should=[stale_chunks(p, n) for p, n in stale])
        )
        with self._lock, translate_errors():
            self._client.delete(self._collection, points_selector=selector, wait=True)


def stale_chunks(parent_id: str, count: int) -> models.Filter:
    """The chunk points of ``parent_id`` from index ``count`` on."""
    return models.Filter(
        must=[
            models.FieldCondition(key=PARENT_FIELD, match=models.MatchValue(value=parent_id)),
            models.FieldCondition(key=INDEX_FIELD, range=models.Range(gte=count)),
        ]
    )


@dataclasses.dataclass
class WriteReport:
    """What happened to one batch: what landed, what failed, and what it cost."""

    written: list[Any] = dataclasses.field(default_factory=list)
    failed: list[tuple[models.PointStruct, QdrantBeamError, int]] = dataclasses.field(
        default_factory=list
    )
    requests: int = 0
    retries: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    throttled_s: float = 0.0
    latencies_ms: list[int] = dataclasses.field(default_factory=list)
    bisections: int = 0

    @property
    def attempts(self) -> int:
        return self.requests

    def retried(self, error: QdrantBeamError, wait_s: float) -> None:
        self.retries[retry_cause(error)] += 1
        if is_throttle(error):
            self.throttled_s += wait_s


class RetryingWriter:
    """Retries transient errors by ``policy`` (the package's one retry loop); bisects batches
    Qdrant rejects."""

    def __init__(
        self,
        writer: PointWriter,
        policy: RetryPolicy | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        listener: RetryListener | None = None,
    ) -> None:
        self._writer = writer
        self._retrying = Retrying(policy, clock=clock, rng=rng, listener=listener)

    def write(
        self, points: list[models.PointStruct], stale: list[tuple[str, int]] | None = None
    ) -> WriteReport:
        """Write the points; first, delete the ``stale`` chunks of records written here
        (``(parent id, new chunk count)``): if that fails, no point of the batch is sent."""
        report = WriteReport()
        if stale:
            try:
                self._retrying.call(
                    lambda: self._counted(report, self._writer.delete_stale_chunks, stale),
                    on_retry=report.retried,
                )
            except QdrantBeamError as exc:
                attempts = getattr(exc, "attempts", 1)
                report.failed.extend((point, exc, attempts) for point in points)
                return report
        self._write(points, report)
        return report

    @staticmethod
    def _counted(report: WriteReport, call: Any, *args: Any) -> None:
        report.requests += 1
        call(*args)

    def _write(self, points: list[models.PointStruct], report: WriteReport) -> None:
        try:
            self._with_retries(points, report)
        except RejectedPoints as exc:
            if len(points) == 1 or not exc.point_specific:
                report.failed.extend((point, exc, 1) for point in points)
                return
            report.bisections += 1
            middle = len(points) // 2
            self._write(points[:middle], report)
            self._write(points[middle:], report)
        except QdrantBeamError as exc:
            attempts = getattr(exc, "attempts", 1)
            report.failed.extend((point, exc, attempts) for point in points)
        else:
            report.written.extend(point.id for point in points)

    def _with_retries(self, points: list[models.PointStruct], report: WriteReport) -> None:
        def attempt() -> None:
            report.requests += 1
            sent = time.perf_counter()
            try:
                self._writer.write(points)
            finally:
                report.latencies_ms.append(int((time.perf_counter() - sent) * _MS_PER_S))

        self._retrying.call(attempt, on_retry=report.retried)
