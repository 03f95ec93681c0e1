"""Embedded Qdrant in this process: qdrant-edge (the default) or qdrant-client's local mode.

One client per storage folder per process, shared by every DoFn thread: both engines lock
their folder, so a second client on it fails even in the same process. ``:memory:`` is
local mode kept for the life of the process, so the data a pipeline wrote can be read back
through ``target.connect()`` afterwards.

Engines (``QdrantTarget(path=..., engine=...)``):

* ``edge``: Qdrant's own engine (``EdgeClient``): segments on disk, HNSW, a WAL; thread-safe.
* ``local``: qdrant-client's local mode: every point in memory, brute-force search; not
  thread-safe, so writes to a folder go through one lock.
* ``auto``: ``local`` for a folder local mode wrote (with a one-line notice), else ``edge``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from qdrant_beam.connectors.edge import EdgeClient, kind
from qdrant_beam.io.errors import SpecError

__all__ = ["Engine", "acquire", "engine_for", "release", "write_lock"]

_LOG = logging.getLogger("qdrant_beam")

Engine = Literal["auto", "edge", "local"]

MEMORY = ":memory:"


def engine_for(path: str | None, engine: Engine) -> Literal["edge", "local"]:
    """The engine that opens ``path`` (``None``: in memory, which is local mode)."""
    if path is None:
        return "local"
    if engine != "auto":
        return engine
    return "local" if kind(path) == "local" else "edge"


class _Stores:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._users: dict[str, int] = {}
        self._write_locks: dict[str, threading.Lock] = {}
        self._noticed: set[str] = set()

    def write_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._write_locks.setdefault(key, threading.Lock())

    def acquire(self, key: str, engine: Engine) -> Any:
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._open(key, engine)
            self._users[key] = self._users.get(key, 0) + 1
            return self._clients[key]

    def release(self, key: str) -> None:
        with self._lock:
            self._users[key] = max(0, self._users.get(key, 0) - 1)
            if self._users[key] == 0 and key != MEMORY and key in self._clients:
                self._clients.pop(key).close()

    def _open(self, key: str, engine: Engine) -> Any:
        if key == MEMORY:
            from qdrant_client import QdrantClient

            return QdrantClient(location=MEMORY)
        resolved = engine_for(key, engine)
        if resolved == "edge":
            return EdgeClient(key)
        if engine == "auto" and key not in self._noticed:
            self._noticed.add(key)
            _LOG.warning(
                "%s holds a qdrant-client local-mode store: opening it with that engine "
                "(--qdrant-engine local says so). New folders use the embedded Qdrant engine.",
                key,
            )
        return _open_local_mode(key)


def _open_local_mode(path: str) -> Any:
    from qdrant_client import QdrantClient

    try:
        return QdrantClient(path=path)
    except RuntimeError as exc:  # portalocker: another process holds the folder
        raise SpecError(
            f"the embedded Qdrant folder {path!r} is already open in another process "
            f"({exc}). An embedded store allows one process per folder: run on FnApiRunner or "
            f"DirectRunner in_memory/multi_threading mode, or write to a Qdrant server with "
            f"url=..."
        ) from None


_STORES = _Stores()
acquire = _STORES.acquire
release = _STORES.release
write_lock = _STORES.write_lock
