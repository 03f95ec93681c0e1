"""What every inference DoFn does on a worker: rebuild the shared model store from config."""

from __future__ import annotations

from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.utils.shared import Shared

from qdrant_beam.transforms.backends.providers import ProviderConfig
from qdrant_beam.transforms.backends.registry import InputKind
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.engine import InferenceEngine, ModelStore
from qdrant_beam.transforms.images import ImageLimits

__all__ = ["EngineDoFn", "StoreConfig"]


class StoreConfig(NamedTuple):
    """Everything a worker needs to rebuild the model store (config, not objects; no keys)."""

    catalog: ModelCatalog
    cache_size: int
    image_limits: ImageLimits
    embed_batch_size: int
    preload: tuple[tuple[str, InputKind, tuple[tuple[str, Any], ...]], ...]
    providers: tuple[tuple[str, ProviderConfig], ...] = ()


class EngineDoFn(beam.DoFn):
    """Base DoFn: ``setup`` acquires the per-process store (models load once per process,
    provider keys are read from the worker's environment here)."""

    def __init__(self, config: StoreConfig, shared: Shared) -> None:
        self._config = config
        self._shared = shared

    def setup(self) -> None:
        config = self._config
        store: ModelStore = self._shared.acquire(
            lambda: ModelStore(
                config.catalog,
                cache_size=config.cache_size,
                image_limits=config.image_limits,
                providers=dict(config.providers),
            ),
            tag=repr(config),
        )
        for model, kind, options in config.preload:
            store.preload(model, kind, dict(options))
        self._store = store  # a strong reference keeps the shared store alive
        self._engine = InferenceEngine(store, embed_batch_size=config.embed_batch_size)
