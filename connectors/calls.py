"""Calls to Qdrant with the package's rules: qdrant-client's errors translated, the embedded
store's lock held (local mode is not thread-safe), and transient errors retried by the one
retry loop.

Usage::

    calls = QdrantCalls(target, client, Retrying(RetryPolicy()))
    found = calls(lambda c: c.retrieve("docs", ids, with_vectors=False))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from qdrant_beam.connectors.qdrant_errors import translate_errors
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.io.retry import Retrying

__all__ = ["QdrantCalls"]

T = TypeVar("T")


class QdrantCalls:
    """``calls(action)`` runs ``action(client)`` by the rules above; thread-safe."""

    def __init__(self, target: QdrantTarget, client: Any, retrying: Retrying) -> None:
        self.client = client
        self._lock = target.write_lock() or contextlib.nullcontext()
        self._retrying = retrying

    def __call__(self, action: Callable[[Any], T]) -> T:
        def once() -> T:
            with self._lock, translate_errors():
                return action(self.client)

        return self._retrying.call(once)
