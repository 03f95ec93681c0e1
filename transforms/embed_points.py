"""``EmbedPoints(spec)``: records in, points with plain vectors out, in one step.

The same as ``RecordsToPoints(spec) | ResolveInference.from_spec(spec)`` (the same points,
dead letters and metrics), but records are batched and each batch is mapped and resolved
together, so dict records, not pydantic points, cross the batching hop, and each point is
built once, with its vectors.

Usage::

    points, dead = records | EmbedPoints(load_spec("spec.yaml"), cache_size=10_000)
"""

from __future__ import annotations

from typing import Any

from apache_beam.pvalue import PCollection

from qdrant_beam.transforms.outputs import AnnotatedTransform, InferenceOutputs
from qdrant_beam.transforms.prepare import FromRecords
from qdrant_beam.transforms.resolve import ResolveInference
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["EmbedPoints"]


class EmbedPoints(AnnotatedTransform):
    """Records to points with plain vectors; keyword arguments go to ``ResolveInference``."""

    def __init__(self, spec: PointsSpec, **resolve_kwargs: Any) -> None:
        super().__init__()
        self._resolve = ResolveInference.from_spec(
            spec, prepare=FromRecords(spec), **resolve_kwargs
        )

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        return pcoll | "ResolveInference" >> self._resolve
