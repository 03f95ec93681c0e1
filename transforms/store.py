"""Per-process inference state shared by every DoFn thread: loaded models, provider clients,
the vector cache, the image reader, and the keys being computed right now.

Built once per worker process from config (``apache_beam.utils.shared.Shared``); provider keys
are read from the worker's environment here, in ``setup``, and held only by the clients.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from qdrant_beam.transforms.backends.local import LocalEmbedder
from qdrant_beam.transforms.backends.providers import (
    PROVIDERS,
    Provider,
    ProviderConfig,
    provider_for,
)
from qdrant_beam.transforms.backends.registry import Family, InputKind
from qdrant_beam.transforms.backends.remote import RemoteClient
from qdrant_beam.transforms.backends.runners import GroupRunner, LocalRunner, RemoteRunner
from qdrant_beam.transforms.cache import VectorCache
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.images import ImageLimits, ImageReader
from qdrant_beam.transforms.options import split_options
from qdrant_beam.transforms.requests import CallGroup, Request, RequestParser

__all__ = ["Flight", "ModelStore", "Outcome"]

Outcome = Any  # a raw vector, or the PermanentError that stopped it

RemoteFactory = Callable[[Provider, ProviderConfig, str | None], RemoteClient]


class Flight:
    """One compute call's keys in progress; other threads wait on it instead of recomputing."""

    __slots__ = ("done", "error", "results")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.results: dict[Hashable, Outcome] = {}
        self.error: BaseException | None = None

    def wait(self, key: Hashable) -> Outcome:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.results[key]


class ModelStore:
    """What every DoFn thread of one worker process shares."""

    def __init__(
        self,
        catalog: ModelCatalog,
        *,
        cache_size: int = 0,
        image_limits: ImageLimits | None = None,
        providers: Mapping[str, ProviderConfig] | None = None,
        remote_factory: RemoteFactory | None = None,
    ) -> None:
        self.catalog = catalog
        self.parser = RequestParser(catalog)
        self.cache = VectorCache(cache_size) if cache_size > 0 else None
        self.images = ImageReader(image_limits)
        self._runners: dict[Hashable, GroupRunner] = {}
        self._lock = threading.Lock()
        self.providers = {name: (providers or {}).get(name, ProviderConfig()) for name in PROVIDERS}
        self._env_keys = {
            name: os.environ.get(config.api_key_env or PROVIDERS[name].env_key)
            for name, config in self.providers.items()
        }
        self._remote: dict[tuple[str, str], RemoteClient] = {}
        self._remote_factory: RemoteFactory = remote_factory or RemoteClient
        self._pending: dict[Hashable, Flight] = {}
        self._pending_lock = threading.Lock()

    # -- what computes a group ------------------------------------------------------------
    def runner(self, request: Request, on_load: Callable[[], None] | None = None) -> GroupRunner:
        """What computes a request's call group: the loaded local model, or the provider
        client of its account; built once per process (``on_load`` is told when a local
        model is loaded)."""
        group = request.group
        runner = self._runners.get(group)
        if runner is not None:
            return runner
        with self._lock:
            runner = self._runners.get(group)
            if runner is None:
                runner = self._build_runner(request)
                self._runners[group] = runner
                if on_load is not None and isinstance(runner, LocalRunner):
                    on_load()
            return runner

    def _build_runner(self, request: Request) -> GroupRunner:
        if request.info.family is Family.REMOTE:
            return RemoteRunner(self._client(request))
        group = request.group
        folder = self.catalog.folder(request.info, dict(group.load))
        return LocalRunner(LocalEmbedder(request.info, folder, dict(group.load)))

    def _client(self, request: Request) -> RemoteClient:
        provider = provider_for(request.info.name)
        assert provider is not None  # routed as remote
        ident = (provider.name, request.group.account)
        client = self._remote.get(ident)
        if client is None:
            key = request.secret or self._env_keys.get(provider.name)
            client = self._remote_factory(provider, self.providers[provider.name], key)
            self._remote[ident] = client
        return client

    def preload(self, model: str, kind: InputKind, options: dict[str, Any]) -> None:
        """Load a model now, so a missing folder fails in ``setup``, not mid-bundle."""
        info = self.catalog.describe(model, kind)
        split = split_options(info, options)
        group = CallGroup(info.name, kind, split.load, split.is_query)
        self.runner(Request((), group, info, None, None, 0))

    # -- keys being computed ----------------------------------------------------------------
    def claim(
        self, keys: list[Hashable], flight: Flight
    ) -> tuple[list[Hashable], dict[Hashable, Flight], dict[Hashable, Outcome]]:
        """Keys the caller computes, the flights of keys another thread is computing, and
        outcomes another thread landed since the caller's cache check.

        A finished thread fills the cache before it clears its pending keys, so a key that is
        neither pending nor cached here, under the lock, is really nobody's: claiming it
        cannot send an input twice.
        """
        mine: list[Hashable] = []
        theirs: dict[Hashable, Flight] = {}
        landed: dict[Hashable, Outcome] = {}
        with self._pending_lock:
            free = []
            for key in keys:
                running = self._pending.get(key)
                if running is not None:
                    theirs[key] = running
                else:
                    free.append(key)
            if free and self.cache is not None:
                landed = self.cache.get_many(free)
            for key in free:
                if key not in landed:
                    self._pending[key] = flight
                    mine.append(key)
        return mine, theirs, landed

    def land(
        self,
        keys: list[Hashable],
        flight: Flight,
        fresh: dict[Hashable, Outcome],
        error: BaseException | None,
    ) -> None:
        """Publish what a claim computed (or the error that stopped it) and release its keys."""
        if error is None and self.cache is not None:
            self.cache.put_many({k: v for k, v in fresh.items() if not isinstance(v, Exception)})
        flight.results, flight.error = fresh, error
        flight.done.set()
        with self._pending_lock:
            for key in keys:
                self._pending.pop(key, None)

    def close(self) -> None:
        self.images.close()
        for client in self._remote.values():
            client.close()
        self._remote.clear()
