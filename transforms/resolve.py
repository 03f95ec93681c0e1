"""``ResolveInference``: inference objects in, plain vectors out.

Usage::

    points, dead = point_structs | ResolveInference(models={"my/model": "/models/my"})
    points, dead = records | ResolveInference.from_spec(spec, prepare=FromRecords(spec))

Works on any ``qdrant_client.models.PointStruct`` whose vectors hold ``models.Document``,
``models.Image`` or ``models.InferenceObject``, so a job written for Qdrant's server-side
inference moves to Beam unchanged; a ``prepare`` step takes records (``EmbedPoints``) or
hashed records (the incremental reindex) instead. One straight line: batch (the dedup
strategy), one DoFn (prepare, then the inference strategy: here or on the server), outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import apache_beam as beam
from apache_beam.pvalue import PCollection
from apache_beam.utils.shared import Shared
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qdrant_beam.io.errors import SpecError
from qdrant_beam.transforms.backends.providers import PROVIDERS, ProviderConfig
from qdrant_beam.transforms.backends.registry import Family, InputKind
from qdrant_beam.transforms.catalog import LocalModel, ModelCatalog
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS
from qdrant_beam.transforms.dedup import BatchDedup, Batching, GlobalDedup
from qdrant_beam.transforms.embed_dofn import (
    EmbedDoFn,
    Inference,
    LocalInference,
    ServerInference,
    StoreConfig,
)
from qdrant_beam.transforms.images import ImageLimits
from qdrant_beam.transforms.options import split_options
from qdrant_beam.transforms.outputs import AnnotatedTransform, InferenceOutputs
from qdrant_beam.transforms.prepare import FromPoints, Preparation
from qdrant_beam.transforms.spec import PointsSpec, problems

__all__ = ["InferenceConfig", "InferenceOutputs", "ResolveInference"]

#: Points per Beam batch by default: enough for dedup and padded model batches to pay off.
DEFAULT_BATCH_SIZE = 256
#: The default when a spec routes a vector to a remote provider: fewer, fuller requests (the
#: providers take up to 96-2048 inputs each and rate-limit requests per minute). Measured on
#: the remote benchmark, 1,024 against 256: 11% less wall time, median of six.
REMOTE_BATCH_SIZE = 1024
#: Batches resolved concurrently per DoFn for remote specs: requests overlap the pipeline.
REMOTE_BATCHES_IN_FLIGHT = 4


class InferenceConfig(BaseModel):
    """How ``ResolveInference`` batches and computes; its keyword arguments are these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, description="Elements per Beam batch.")
    batch_max_bytes: int = Field(8 * 1024 * 1024, ge=1, description="Input bytes per batch.")
    embed_batch_size: int = Field(32, ge=1, description="Inputs per padded model batch.")
    cache_size: int = Field(0, ge=0, description="Per-worker LRU entries; 0 turns it off.")
    dedup: Literal["batch", "global"] = Field("batch", description="Dedup strategy.")
    image_limits: ImageLimits = Field(default_factory=ImageLimits)
    check_models: bool = Field(True, description="Look model folders up at construction.")
    batches_in_flight: int = Field(1, ge=1, description="Batches resolved at once per DoFn.")
    inference: Literal["local", "server"] = Field("local", description="Where vectors come from.")
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in value:
            if name not in PROVIDERS:
                raise ValueError(f"unknown provider {name!r}; use one of {', '.join(PROVIDERS)}")
        return value


class ResolveInference(AnnotatedTransform):
    """Replace inference objects with vectors; returns ``InferenceOutputs``.

    Args:
        config: batching and computing settings (``InferenceConfig``); or give its fields as
            keyword arguments: ``batch_size`` (elements per Beam batch; dedup and length
            ordering act within one), ``batch_max_bytes``, ``embed_batch_size`` (inputs per
            padded model batch), ``cache_size`` (per-worker LRU), ``dedup`` (``"batch"`` or
            ``"global"``: a shuffle puts identical inputs on one worker first),
            ``image_limits``, ``check_models`` (look local folders up now and load models on
            first use; off when the folders exist only on the workers, which then load every
            model in ``setup``), ``batches_in_flight``, ``inference`` (``"server"`` leaves the
            inference objects for Qdrant to embed and only checks them), ``providers``.
        models: model name -> folder (or ``LocalModel`` facts) for local models.
        model_search_paths: folders searched for models not in ``models``.
        catalog: the models and folders, instead of ``models`` and ``model_search_paths``.
        preload: (model, input kind, options) the transform uses, checked or loaded early.
        prepare: what the input is; ``FromPoints()`` by default.
    """

    def __init__(
        self,
        config: InferenceConfig | None = None,
        *,
        models: Mapping[str, LocalModel | Mapping[str, Any] | str] | None = None,
        model_search_paths: Sequence[str] = (),
        catalog: ModelCatalog | None = None,
        preload: Sequence[tuple[str, InputKind, Mapping[str, Any]]] = (),
        prepare: Preparation | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        self.config = config = _config(config, settings)
        catalog = catalog or ModelCatalog.of(models, list(model_search_paths))
        frozen_preload = tuple(
            (model, InputKind(kind), tuple(sorted(dict(opts).items())))
            for model, kind, opts in preload
        )
        setup_loads = frozen_preload
        if config.check_models and config.inference == "local":
            # local folders exist now: workers load them on first use
            for model, kind, opts in frozen_preload:
                info = catalog.describe(model, kind)
                if info.family is not Family.REMOTE:
                    catalog.folder(info, split_options(info, dict(opts)).load_dict)
            setup_loads = tuple(
                entry
                for entry in frozen_preload
                if catalog.describe(entry[0], entry[1]).family is Family.REMOTE
            )
        self.store_config = store = StoreConfig(
            catalog,
            config.cache_size,
            config.image_limits,
            config.embed_batch_size,
            setup_loads,
            tuple(sorted(config.providers.items())),
        )
        self._prepare = prepare or FromPoints()
        self._inference: Inference = (
            ServerInference() if config.inference == "server" else LocalInference(store)
        )
        self._batching: Batching = (
            GlobalDedup(catalog) if config.dedup == "global" else BatchDedup()
        )
        self._shared = Shared()

    @classmethod
    def from_spec(
        cls, spec: PointsSpec, *, prepare: Preparation | None = None, **settings: Any
    ) -> ResolveInference:
        """Resolve with the spec's models and providers, preloading every model it uses;
        a spec that routes a vector to a remote provider batches 1,024 elements and keeps
        four batches in flight unless told otherwise."""
        preload = []
        seen = set()
        remote = False
        for name, vector in spec.vectors.items():
            load = tuple(sorted(spec.split_options(name).load))
            info = spec.model_info(name)
            remote = remote or info.family is Family.REMOTE
            key = (info.name, vector.input_kind, load)
            if key not in seen:
                seen.add(key)
                preload.append((key[0], key[1], dict(load)))
        settings.setdefault("providers", spec.providers)
        if settings.get("batch_size") is None:
            settings["batch_size"] = REMOTE_BATCH_SIZE if remote else DEFAULT_BATCH_SIZE
        if settings.get("batches_in_flight") is None:
            settings["batches_in_flight"] = REMOTE_BATCHES_IN_FLIGHT if remote else 1
        return cls(catalog=spec.catalog(), preload=preload, prepare=prepare, **settings)

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        config = self.config
        batches = self._batching.batches(
            pcoll, self._prepare, config.batch_size, config.batch_max_bytes
        )
        inference = self._inference
        if isinstance(inference, LocalInference):  # providers: the runner's worker count
            inference = LocalInference(
                self.store_config.with_runner_workers(pcoll.pipeline.options)
            )
        outputs = batches | "Embed" >> beam.ParDo(
            EmbedDoFn(self._prepare, inference, self._shared, config.batches_in_flight)
        ).with_outputs(DEAD_LETTERS, main="points")
        return InferenceOutputs(outputs.points, outputs[DEAD_LETTERS])


def _config(config: InferenceConfig | None, settings: dict[str, Any]) -> InferenceConfig:
    given = {k: v for k, v in settings.items() if v is not None}
    if config is not None and not given:
        return config
    base = config.model_dump() if config is not None else {}
    try:
        return InferenceConfig.model_validate({**base, **given})
    except ValidationError as exc:
        raise SpecError(f"ResolveInference: {'; '.join(problems(exc))}") from None
