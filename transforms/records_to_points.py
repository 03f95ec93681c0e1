"""``RecordsToPoints``: dict records in, ``PointStruct``s with inference objects out.

Usage::

    points, dead = records | RecordsToPoints(load_spec("spec.yaml"))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PCollection

from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.errors import QdrantBeamError
from qdrant_beam.transforms.mapping import MappedRecord, RecordMapper
from qdrant_beam.transforms.outputs import AnnotatedTransform, InferenceOutputs
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["RecordsToPoints"]

_NAMESPACE = "qdrant_beam.map"


class MapDoFn(beam.DoFn):
    """record -> point, or the record to dead letters naming the field and the problem."""

    def __init__(self, spec: PointsSpec) -> None:
        self._spec = spec
        self._mapped = Metrics.counter(_NAMESPACE, "records_mapped")
        self._dead = Metrics.counter(_NAMESPACE, "dead_letters")

    def setup(self) -> None:
        self._mapper = RecordMapper(self._spec)

    def process(self, record: Any) -> Iterator[Any]:
        try:
            point = self._mapper.to_point(record)
        except QdrantBeamError as exc:
            self._dead.inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS, FailedRecord.from_exception(record, Stage.MAP, exc)
            )
            return
        self._mapped.inc()
        yield point

    def map_batch(self, records: list[Any]) -> tuple[list[MappedRecord], list[FailedRecord]]:
        """``process`` over a batch, counted once, for the fused map-and-embed step: the
        mapped records (not yet points) and the dead letters."""
        points: list[MappedRecord] = []
        failed: list[FailedRecord] = []
        map_record = self._mapper.map
        for record in records:
            try:
                points.append(map_record(record))
            except QdrantBeamError as exc:
                failed.append(FailedRecord.from_exception(record, Stage.MAP, exc))
        if points:
            self._mapped.inc(len(points))
        if failed:
            self._dead.inc(len(failed))
        return points, failed


class RecordsToPoints(AnnotatedTransform):
    """Map records to points per the spec; unmappable records go to dead letters."""

    def __init__(self, spec: PointsSpec) -> None:
        super().__init__()
        self._spec = spec

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        out = pcoll | "Map" >> beam.ParDo(MapDoFn(self._spec)).with_outputs(
            DEAD_LETTERS, main="points"
        )
        return InferenceOutputs(out.points, out[DEAD_LETTERS])
