"""A bounded, thread-safe LRU map from dedup key to computed vector, one per worker process."""

from __future__ import annotations

import collections
import threading
from collections.abc import Hashable
from typing import Any

__all__ = ["VectorCache"]


class VectorCache:
    """Least-recently-used cache; ``max_entries`` bounds memory by count of vectors."""

    def __init__(self, max_entries: int) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, got {max_entries!r}")
        self.max_entries = max_entries
        self._data: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get_many(self, keys: list[Hashable]) -> dict[Hashable, Any]:
        found: dict[Hashable, Any] = {}
        with self._lock:
            for key in keys:
                if key in self._data:
                    self._data.move_to_end(key)
                    found[key] = self._data[key]
        return found

    def put_many(self, items: dict[Hashable, Any]) -> None:
        with self._lock:
            for key, value in items.items():
                self._data[key] = value
                self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
