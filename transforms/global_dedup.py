"""Opt-in global dedup: embed each unique input once across all workers, then join back.

Per-batch dedup misses duplicates that land on different workers or batches. This mode
keys every inference object by its dedup key, groups by it (one shuffle), embeds each key
once, and joins the vectors back to their points by a per-point reference (a second
shuffle). It pays off when model calls cost more than shuffles: remote providers, heavily
duplicated corpora.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import PCollection
from apache_beam.utils.shared import Shared
from qdrant_client import models

from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.engine import InputFailed, assemble
from qdrant_beam.transforms.errors import QdrantBeamError
from qdrant_beam.transforms.options import canonical_json
from qdrant_beam.transforms.outputs import AnnotatedTransform
from qdrant_beam.transforms.worker import EngineDoFn, StoreConfig

__all__ = ["GlobalDedupResolve"]

_REQUESTS = "requests"


class _ParseDoFn(EngineDoFn):
    """Point -> (ref, point) on main, (dedup key, (ref, name, request)) on 'requests'."""

    def process(self, point: models.PointStruct) -> Iterator[Any]:
        try:
            parsed = self._engine.parse(point)
        except QdrantBeamError as exc:
            self._engine.count_failed(1)
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS, FailedRecord.from_exception(point, Stage.INFERENCE, exc)
            )
            return
        ref = uuid.uuid4().hex
        self._engine.count_objects(len(parsed))
        yield ref, point
        for name, request in parsed:
            key = canonical_json(list(request.key))
            yield beam.pvalue.TaggedOutput(_REQUESTS, (key, (ref, name, request)))


class _ComputeDoFn(EngineDoFn):
    """A batch of unique keys -> (ref, (name, outcome, request)) for every reference."""

    def process(self, batch: list[tuple[str, Iterable[Any]]]) -> Iterator[Any]:
        groups = [list(refs) for _, refs in batch]
        outcomes = self._engine.compute([refs[0][2] for refs in groups])
        for refs in groups:
            for ref, name, request in refs:
                yield ref, (name, outcomes[request.key], request)


class _AssembleDoFn(beam.DoFn):
    def process(self, joined: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        _, parts = joined
        for point in parts["point"]:
            pairs = [(name, request) for name, _, request in parts["vectors"]]
            outcomes = {request.key: outcome for _, outcome, request in parts["vectors"]}
            try:
                yield assemble(point, pairs, outcomes)
            except InputFailed as exc:
                yield beam.pvalue.TaggedOutput(
                    DEAD_LETTERS, FailedRecord(point, Stage.INFERENCE, exc.error_type, str(exc))
                )


class GlobalDedupResolve(AnnotatedTransform):
    """The global-dedup path of ``ResolveInference``; returns (points, dead letters)."""

    def __init__(self, config: StoreConfig, shared: Shared, batch_size: int) -> None:
        super().__init__()
        self._config = config
        self._shared = shared
        self._batch_size = batch_size

    def expand(self, pcoll: PCollection) -> tuple[PCollection, PCollection]:
        parsed = pcoll | "Parse" >> beam.ParDo(_ParseDoFn(self._config, self._shared)).with_outputs(
            DEAD_LETTERS, _REQUESTS, main="points"
        )
        vectors = (
            parsed[_REQUESTS]
            | "GroupByInput" >> beam.GroupByKey()
            | "BatchUnique"
            >> beam.BatchElements(min_batch_size=self._batch_size, max_batch_size=self._batch_size)
            | "EmbedUnique" >> beam.ParDo(_ComputeDoFn(self._config, self._shared))
        )
        assembled = (
            {"point": parsed.points, "vectors": vectors}
            | "JoinToPoints" >> beam.CoGroupByKey()
            | "Assemble" >> beam.ParDo(_AssembleDoFn()).with_outputs(DEAD_LETTERS, main="points")
        )
        dead = (parsed[DEAD_LETTERS], assembled[DEAD_LETTERS]) | "Dead" >> beam.Flatten()
        return assembled.points, dead
