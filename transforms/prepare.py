"""The first step of ``ResolveInference``: its input (points, records, or hashed records) as the
``MappedRecord``s the engine resolves, with dead letters for what cannot be mapped.

A preparation is picklable config; ``setup`` builds what it needs on the worker. It also says
how much an element weighs, so batches are bounded by bytes as well as count.

Usage::

    ResolveInference.from_spec(spec, prepare=FromRecords(spec))   # what EmbedPoints does
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from apache_beam.metrics import Metrics
from qdrant_client import models

from qdrant_beam.io.errors import InvalidRecord, QdrantBeamError
from qdrant_beam.transforms import chunkers
from qdrant_beam.transforms.backends.registry import InputKind, default_input_kind
from qdrant_beam.transforms.chunk_points import ChunkPoints, group_chunks
from qdrant_beam.transforms.dead_letters import FailedRecord, Stage
from qdrant_beam.transforms.mapping import MappedRecord, RecordMapper, VectorInput
from qdrant_beam.transforms.requests import INFERENCE_TYPES
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["MAP_NAMESPACE", "FromHashedRecords", "FromPoints", "FromRecords", "Preparation"]

MAP_NAMESPACE = "qdrant_beam.map"

Prepared = tuple[list[MappedRecord], list[FailedRecord]]


class Preparation(abc.ABC):
    """Turns a batch of inputs into mapped records and dead letters."""

    def setup(self) -> None:  # noqa: B027 (most preparations need no per-worker state)
        """Build per-worker state (mappers); called once in ``DoFn.setup``."""

    @abc.abstractmethod
    def prepare(self, batch: Sequence[Any]) -> Prepared:
        """Mapped records for the good inputs, dead letters for the rest."""

    @abc.abstractmethod
    def weight(self, element: Any) -> int:
        """Approximate bytes of an element's inputs, for byte-bounded batches."""

    def finish(
        self, points: list[models.PointStruct], failed: list[FailedRecord]
    ) -> tuple[list[Any], list[FailedRecord]]:
        """What the resolved points become on the output: themselves, or, for chunk points,
        one ``ChunkGroup`` per record."""
        return points, failed

    @abc.abstractmethod
    def inputs(self, element: Any) -> list[VectorInput]:
        """One element's inputs, uncounted (what global dedup keys elements by); raises
        ``QdrantBeamError`` when it cannot be mapped."""


class FromPoints(Preparation):
    """``PointStruct``s whose vectors are ``Document``/``Image``/``InferenceObject``: what a
    qdrant-client user sends to Qdrant with server-side inference."""

    def prepare(self, batch: Sequence[Any]) -> Prepared:
        mapped: list[MappedRecord] = []
        failed: list[FailedRecord] = []
        for point in batch:
            try:
                mapped.append(_point_inputs(point))
            except QdrantBeamError as exc:
                failed.append(FailedRecord.from_exception(point, Stage.INFERENCE, exc))
        return mapped, failed

    def inputs(self, element: Any) -> list[VectorInput]:
        return _point_inputs(element).inputs

    def weight(self, element: Any) -> int:
        vector = getattr(element, "vector", None)
        objects = vector.values() if isinstance(vector, dict) else [vector]
        size = 0
        for obj in objects:
            if isinstance(obj, models.Document):
                size += len(obj.text) if isinstance(obj.text, str) else 16
            elif isinstance(obj, models.Image):
                size += len(obj.image) if isinstance(obj.image, (str, bytes)) else 1024
            elif isinstance(obj, models.InferenceObject):
                size += len(obj.object) if isinstance(obj.object, (str, bytes)) else 1024
        return size


def _point_inputs(point: Any) -> MappedRecord:
    if not isinstance(point, models.PointStruct):
        raise InvalidRecord(f"not a PointStruct: {type(point).__name__}")
    vector = point.vector
    if isinstance(vector, INFERENCE_TYPES):
        inputs = [_object_input(None, vector)]
    elif isinstance(vector, dict):
        inputs = [
            _object_input(name, value)
            for name, value in vector.items()
            if isinstance(value, INFERENCE_TYPES)
        ]
    else:
        inputs = []
    return MappedRecord(point.id, inputs, point.payload, point)


def _object_input(name: str | None, obj: Any) -> VectorInput:
    """An inference object as the input it carries: (name, kind, value, model, options)."""
    if isinstance(obj, models.Document):
        kind, raw = InputKind.TEXT, obj.text
    elif isinstance(obj, models.Image):
        kind, raw = InputKind.IMAGE, obj.image
    else:
        raw = obj.object
        kind = default_input_kind(obj.model, prefer_image=isinstance(raw, (bytes, bytearray)))
    options = obj.options
    if isinstance(options, models.Bm25Config):
        options = options.model_dump(exclude_none=True)
    return (name, kind, raw, obj.model, options)


class FromRecords(Preparation):
    """Dict records mapped by a spec (``RecordMapper``); an unmappable record is a dead letter
    at stage ``map``, counted in ``qdrant_beam.map`` as ``RecordsToPoints`` counts it."""

    def __init__(self, spec: PointsSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        chunked = self._spec.chunks is not None or any(
            v.chunking is not None for v in self._spec.vectors.values()
        )
        self._mapper = RecordMapper(self._spec, chunkers.build(self._spec) if chunked else None)
        self._chunk_points = ChunkPoints(self._mapper) if self._spec.chunks is not None else None
        self._mapped = Metrics.counter(MAP_NAMESPACE, "records_mapped")
        self._dead = Metrics.counter(MAP_NAMESPACE, "dead_letters")
        self._truncated = Metrics.counter(MAP_NAMESPACE, "chunks_truncated")

    def prepare(self, batch: Sequence[Any]) -> Prepared:
        mapped: list[MappedRecord] = []
        failed: list[FailedRecord] = []
        records = 0
        truncated = self._mapper.truncated
        for element in batch:
            record = self._record(element)
            try:
                mapped.extend(self._map(element, record))
                records += 1
            except QdrantBeamError as exc:
                failed.append(FailedRecord.from_exception(record, Stage.MAP, exc))
        if records:
            self._mapped.inc(records)
        if failed:
            self._dead.inc(len(failed))
        if self._mapper.truncated > truncated:
            self._truncated.inc(self._mapper.truncated - truncated)
        return mapped, failed

    def finish(
        self, points: list[models.PointStruct], failed: list[FailedRecord]
    ) -> tuple[list[Any], list[FailedRecord]]:
        if self._chunk_points is None:
            return points, failed
        return group_chunks(points, failed)

    def _record(self, element: Any) -> Any:
        return element

    def _map(self, element: Any, record: Any) -> list[MappedRecord]:
        if self._chunk_points is not None:
            return self._chunk_points.map(record)
        return [self._mapper.map(record)]

    def inputs(self, element: Any) -> list[VectorInput]:
        record = self._record(element)
        return [i for mapped in self._map(element, record) for i in mapped.inputs]

    def weight(self, element: Any) -> int:
        """Bytes of the record's text and binary fields (its inputs are made from them)."""
        record = self._record(element)
        if not isinstance(record, Mapping):
            return 1
        size = 0
        for value in record.values():
            size += len(value) if isinstance(value, (str, bytes, bytearray)) else 16
        return size


class FromHashedRecords(FromRecords):
    """(content hash, record) pairs, as the incremental reindex passes its new and changed
    records: the point's payload keeps the hash under ``hash_field`` for the next run."""

    def __init__(self, spec: PointsSpec, hash_field: str) -> None:
        super().__init__(spec)
        self._hash_field = hash_field

    def _record(self, element: Any) -> Any:
        return element[1]

    def _map(self, element: Any, record: Any) -> list[MappedRecord]:
        digest = element[0]
        return [
            mapped._replace(payload={**(mapped.payload or {}), self._hash_field: digest})
            for mapped in super()._map(element, record)
        ]
