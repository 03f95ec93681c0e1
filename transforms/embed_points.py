"""``EmbedPoints(spec)`` = ``RecordsToPoints(spec) | ResolveInference.from_spec(spec)``.

Usage::

    points, dead = records | EmbedPoints(load_spec("spec.yaml"), cache_size=10_000)
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.pvalue import PCollection

from qdrant_beam.transforms.records_to_points import RecordsToPoints
from qdrant_beam.transforms.resolve import InferenceOutputs, ResolveInference
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["EmbedPoints"]


class EmbedPoints(beam.PTransform):
    """Records to points with plain vectors; keyword arguments go to ``ResolveInference``."""

    def __init__(self, spec: PointsSpec, **resolve_kwargs: Any) -> None:
        super().__init__()
        self._spec = spec
        self._resolve = ResolveInference.from_spec(spec, **resolve_kwargs)

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        mapped = pcoll | "RecordsToPoints" >> RecordsToPoints(self._spec)
        resolved = mapped.points | "ResolveInference" >> self._resolve
        dead = (mapped.dead_letters, resolved.dead_letters) | "DeadLetters" >> beam.Flatten()
        return InferenceOutputs(resolved.points, dead)
