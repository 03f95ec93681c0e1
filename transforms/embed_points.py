"""``EmbedPoints(spec)`` = ``RecordsToPoints(spec) | ResolveInference.from_spec(spec)``.

With batch dedup and local inference (the defaults), the two run as one step: records are
batched and each batch is mapped and resolved together (``resolve.MapResolveDoFn``). The
points, dead letters and metrics are those of the two transforms in sequence.

Usage::

    points, dead = records | EmbedPoints(load_spec("spec.yaml"), cache_size=10_000)
"""

from __future__ import annotations

from typing import Any

from apache_beam.pvalue import PCollection

from qdrant_beam.transforms.outputs import AnnotatedTransform, InferenceOutputs
from qdrant_beam.transforms.resolve import ResolveInference
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["EmbedPoints"]


class EmbedPoints(AnnotatedTransform):
    """Records to points with plain vectors; keyword arguments go to ``ResolveInference``."""

    def __init__(self, spec: PointsSpec, **resolve_kwargs: Any) -> None:
        super().__init__()
        self._spec = spec
        self._resolve = ResolveInference.from_spec(spec, **resolve_kwargs)

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        return self._resolve.expand_records(pcoll, self._spec)
