"""``ResolveInference``: points whose vectors are inference objects in, plain vectors out.

Usage::

    points, dead = point_structs | ResolveInference(models={"my/model": "/models/my"})

Works on any ``qdrant_client.models.PointStruct`` whose vectors hold ``models.Document``,
``models.Image`` or ``models.InferenceObject``, so a job written for Qdrant's server-side
inference moves to Beam unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import apache_beam as beam
from apache_beam.pvalue import PCollection
from apache_beam.utils.shared import Shared
from qdrant_client import models

from qdrant_beam.transforms.backends.registry import InputKind
from qdrant_beam.transforms.catalog import LocalModel, ModelCatalog
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS
from qdrant_beam.transforms.errors import SpecError
from qdrant_beam.transforms.global_dedup import GlobalDedupResolve
from qdrant_beam.transforms.images import ImageLimits
from qdrant_beam.transforms.options import split_options
from qdrant_beam.transforms.requests import INFERENCE_TYPES
from qdrant_beam.transforms.spec import PointsSpec
from qdrant_beam.transforms.worker import EngineDoFn, StoreConfig

__all__ = ["InferenceOutputs", "ResolveInference"]


class InferenceOutputs(NamedTuple):
    """What the inference transforms return; unpacks as ``points, dead_letters``."""

    points: PCollection
    dead_letters: PCollection


def point_weight(point: models.PointStruct) -> int:
    """Approximate bytes of a point's inference inputs, for byte-bounded batches."""
    vector = point.vector
    objects = vector.values() if isinstance(vector, dict) else [vector]
    size = 0
    for obj in objects:
        if isinstance(obj, models.Document):
            size += len(obj.text)
        elif isinstance(obj, models.Image):
            size += len(obj.image) if isinstance(obj.image, (str, bytes)) else 1024
        elif isinstance(obj, models.InferenceObject):
            size += len(obj.object) if isinstance(obj.object, (str, bytes)) else 1024
    return size


class ResolveDoFn(EngineDoFn):
    """Thin: the engine resolves a batch; bad points go to the dead-letter output."""

    def process(self, batch: list[models.PointStruct]) -> Iterator[Any]:
        points, failed = self._engine.resolve(batch)
        yield from points
        for record in failed:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, record)


class ResolveInference(beam.PTransform):
    """Replace inference objects with vectors; returns ``InferenceOutputs``.

    Args:
        models: model name -> folder (or ``LocalModel`` facts) for local models.
        model_search_paths: folders searched for models not in ``models``.
        batch_size: points per Beam batch (dedup and length ordering act within one batch).
        batch_max_bytes: bound on the input bytes of one batch.
        embed_batch_size: inputs per padded model batch inside fastembed.
        cache_size: entries of the per-worker LRU cache across batches; 0 turns it off.
        dedup: ``"batch"`` dedupes within each batch; ``"global"`` shuffles by dedup key first,
            so each unique input is embedded once across all workers.
        image_limits: pixel, byte and format bounds for image inputs.
        preload: (model, input kind, options) to load in ``setup`` so a missing model fails
            before the first element.
        check_models: look the preloaded models' folders up now, on the launching machine;
            turn off when the folders exist only on the workers.
    """

    def __init__(
        self,
        *,
        models: Mapping[str, LocalModel | Mapping[str, Any] | str] | None = None,
        model_search_paths: Sequence[str] = (),
        catalog: ModelCatalog | None = None,
        batch_size: int = 256,
        batch_max_bytes: int = 8 * 1024 * 1024,
        embed_batch_size: int = 64,
        cache_size: int = 0,
        dedup: Literal["batch", "global"] = "batch",
        image_limits: ImageLimits | None = None,
        preload: Sequence[tuple[str, InputKind, Mapping[str, Any]]] = (),
        check_models: bool = True,
    ) -> None:
        super().__init__()
        if batch_size < 1 or embed_batch_size < 1 or batch_max_bytes < 1 or cache_size < 0:
            raise SpecError(
                "batch_size, embed_batch_size and batch_max_bytes must be positive and "
                f"cache_size non-negative; got {batch_size}, {embed_batch_size}, "
                f"{batch_max_bytes}, {cache_size}"
            )
        if dedup not in ("batch", "global"):
            raise SpecError(f"dedup must be 'batch' or 'global', got {dedup!r}")
        catalog = catalog or ModelCatalog.of(models, list(model_search_paths))
        frozen_preload = tuple(
            (model, InputKind(kind), tuple(sorted(dict(opts).items())))
            for model, kind, opts in preload
        )
        if check_models:
            for model, kind, opts in frozen_preload:
                info = catalog.describe(model, kind)
                catalog.folder(info, split_options(info, dict(opts)).load_dict)
        self._config = StoreConfig(
            catalog, cache_size, image_limits or ImageLimits(), embed_batch_size, frozen_preload
        )
        self._batch_size = batch_size
        self._batch_max_bytes = batch_max_bytes
        self._dedup = dedup
        self._shared = Shared()

    @classmethod
    def from_spec(cls, spec: PointsSpec, **kwargs: Any) -> ResolveInference:
        """Resolve with the spec's models, preloading every model its vectors use."""
        preload = []
        seen = set()
        for name, vector in spec.vectors.items():
            load = tuple(sorted(spec.split_options(name).load))
            key = (spec.model_info(name).name, vector.input_kind, load)
            if key not in seen:
                seen.add(key)
                preload.append((key[0], key[1], dict(load)))
        return cls(catalog=spec.catalog(), preload=preload, **kwargs)

    def _batch(self, pcoll: PCollection) -> PCollection:
        per_byte = self._batch_size / self._batch_max_bytes
        return pcoll | "Batch" >> beam.BatchElements(
            min_batch_size=self._batch_size,
            max_batch_size=self._batch_size,
            element_size_fn=lambda p: max(1, math.ceil(point_weight(p) * per_byte)),
        )

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        if self._dedup == "global":
            return InferenceOutputs(
                *pcoll
                | "GlobalDedup" >> GlobalDedupResolve(self._config, self._shared, self._batch_size)
            )
        outputs = self._batch(pcoll) | "Embed" >> beam.ParDo(
            ResolveDoFn(self._config, self._shared)
        ).with_outputs(DEAD_LETTERS, main="points")
        return InferenceOutputs(outputs.points, outputs[DEAD_LETTERS])


def has_inference(point: models.PointStruct) -> bool:
    vector = point.vector
    if isinstance(vector, dict):
        return any(isinstance(v, INFERENCE_TYPES) for v in vector.values())
    return isinstance(vector, INFERENCE_TYPES)
