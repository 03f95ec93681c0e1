"""``RecordsToPoints``: dict records in, ``PointStruct``s with inference objects out.

Usage::

    points, dead = records | RecordsToPoints(load_spec("spec.yaml"))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import PCollection

from qdrant_beam.io.errors import SpecError
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS
from qdrant_beam.transforms.outputs import AnnotatedTransform, InferenceOutputs
from qdrant_beam.transforms.prepare import FromRecords
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["RecordsToPoints"]


class MapDoFn(beam.DoFn):
    """record -> its point (or its chunk points), or the record to dead letters naming the
    field and the problem: the mapping of ``EmbedPoints``, without the inference."""

    def __init__(self, spec: PointsSpec) -> None:
        self._prepare = FromRecords(spec)

    def setup(self) -> None:
        self._prepare.setup()

    def process(self, record: Any) -> Iterator[Any]:
        mapped, failed = self._prepare.prepare([record])
        for item in mapped:
            yield item.to_point()
        for dead in failed:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, dead)


class RecordsToPoints(AnnotatedTransform):
    """Map records to points per the spec; unmappable records go to dead letters."""

    def __init__(self, spec: PointsSpec) -> None:
        super().__init__()
        chunked = [name for name, v in spec.vectors.items() if v.chunking is not None]
        if chunked:
            raise SpecError(
                f"vectors {', '.join(chunked)}: a chunked multivector has no inference object "
                f"form; use EmbedPoints, which chunks and embeds in one step"
            )
        self._spec = spec

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        out = pcoll | "Map" >> beam.ParDo(MapDoFn(self._spec)).with_outputs(
            DEAD_LETTERS, main="points"
        )
        return InferenceOutputs(out.points, out[DEAD_LETTERS])
