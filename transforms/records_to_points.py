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

from qdrant_beam.io.errors import QdrantBeamError
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.mapping import RecordMapper
from qdrant_beam.transforms.outputs import AnnotatedTransform, InferenceOutputs
from qdrant_beam.transforms.prepare import MAP_NAMESPACE
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["RecordsToPoints"]


class MapDoFn(beam.DoFn):
    """record -> point, or the record to dead letters naming the field and the problem."""

    def __init__(self, spec: PointsSpec) -> None:
        self._spec = spec
        self._mapped = Metrics.counter(MAP_NAMESPACE, "records_mapped")
        self._dead = Metrics.counter(MAP_NAMESPACE, "dead_letters")

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
