"""Resolve a batch of mapped records with as few model calls as possible.

Beam-free apart from ``Metrics`` (a no-op outside a pipeline), so it is tested directly.
The steps: parse every input into a request, dedupe by key, answer from the per-worker cache
(or wait for another thread already computing a key), group the rest by model, run each group
once (``GroupRunner``), and build the points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

from qdrant_client import models

from qdrant_beam.io.errors import ModelNotFound, PermanentError, QdrantBeamError
from qdrant_beam.transforms.assemble import InputFailed, assemble
from qdrant_beam.transforms.backends.runners import RunContext
from qdrant_beam.transforms.dead_letters import FailedRecord, Stage
from qdrant_beam.transforms.mapping import MappedRecord
from qdrant_beam.transforms.metrics import METRICS_NAMESPACE, EngineMetrics
from qdrant_beam.transforms.requests import CallGroup, Request
from qdrant_beam.transforms.store import Flight, ModelStore, Outcome

__all__ = ["METRICS_NAMESPACE", "InferenceEngine"]


class InferenceEngine:
    """Computes vectors for mapped records; one per DoFn thread, over a shared ``ModelStore``."""

    def __init__(
        self,
        store: ModelStore,
        *,
        embed_batch_size: int = 32,
        image_fetch_workers: int = 8,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self._store = store
        self._m = metrics or EngineMetrics()
        self._ctx = RunContext(self._m, store.images, embed_batch_size, image_fetch_workers)

    def resolve(
        self, records: Sequence[MappedRecord]
    ) -> tuple[list[models.PointStruct], list[FailedRecord]]:
        """Points with plain vectors, and dead letters (stage ``inference``) for records with a
        bad input; a dead letter carries the point with its inference objects."""
        request = self._store.parser.request
        parsed: list[tuple[MappedRecord, list[tuple[str | None, Request]]]] = []
        failed: list[FailedRecord] = []
        for record in records:
            try:
                reqs: list[tuple[str | None, Request]] = [
                    (name, request(kind, value, model, options))
                    for name, kind, value, model, options in record.inputs
                ]
            except QdrantBeamError as exc:
                failed.append(FailedRecord.from_exception(record.to_point(), Stage.INFERENCE, exc))
                continue
            parsed.append((record, reqs))
        requests = [req for _, reqs in parsed for _, req in reqs]
        self._m.inc("inference_objects", len(requests))
        outcomes = self.compute(requests)
        done: list[models.PointStruct] = []
        dense: dict[tuple[Hashable, int | None], list[float]] = {}
        for record, reqs in parsed:
            try:
                done.append(assemble(record, reqs, outcomes, dense))
            except InputFailed as exc:
                point = record.to_point()
                failed.append(FailedRecord(point, Stage.INFERENCE, exc.error_type, str(exc)))
        self._m.inc("points_resolved", len(done))
        self._m.inc("dead_letters", len(failed))
        return done, failed

    def compute(self, requests: Sequence[Request]) -> dict[Hashable, Outcome]:
        """One outcome per unique key; duplicates and cached keys cost no model call.

        A key another thread of this worker is computing right now is waited for, not
        computed again (batches run concurrently with remote providers).
        """
        unique: dict[Hashable, Request] = {}
        for req in requests:
            unique.setdefault(req.key, req)
        self._m.inc("unique_inputs", len(unique))
        outcomes: dict[Hashable, Outcome] = {}
        store = self._store
        if store.cache is not None and unique:
            outcomes.update(store.cache.get_many(list(unique)))
            self._m.inc("cache_hits", len(outcomes))
        flight = Flight()
        mine, theirs, landed = store.claim([k for k in unique if k not in outcomes], flight)
        if landed:  # finished by another thread between the cache check and the claim
            outcomes.update(landed)
            self._m.inc("cache_hits", len(landed))
        if theirs:
            self._m.inc("inflight_hits", len(theirs))
        groups: dict[CallGroup, list[Request]] = defaultdict(list)
        for key in mine:
            groups[unique[key].group].append(unique[key])
        fresh: dict[Hashable, Outcome] = {}
        try:
            for group_requests in groups.values():
                fresh.update(self._run_group(group_requests))
        except BaseException as exc:
            store.land(mine, flight, fresh, exc)
            raise
        store.land(mine, flight, fresh, None)
        outcomes.update(fresh)
        for key, other in theirs.items():
            outcomes[key] = other.wait(key)
        return outcomes

    def _run_group(self, requests: list[Request]) -> dict[Hashable, Outcome]:
        try:
            runner = self._store.runner(requests[0], lambda: self._m.inc("model_loads"))
        except ModelNotFound:
            raise  # a deployment error, not bad input: fail loudly
        except QdrantBeamError as exc:
            error = exc if isinstance(exc, PermanentError) else PermanentError(str(exc))
            return {req.key: error for req in requests}
        return runner.run(requests, self._ctx)
