"""Where inference reports: Beam ``Metrics`` in a pipeline, a recorder on other threads."""

from __future__ import annotations

import threading
from collections import defaultdict

from apache_beam.metrics import Metrics

__all__ = ["METRICS_NAMESPACE", "EngineMetrics", "RecordingMetrics"]

METRICS_NAMESPACE = "qdrant_beam.inference"


class EngineMetrics:
    """Beam ``Metrics`` (a no-op outside a pipeline); tests pass a plain counter instead."""

    def inc(self, name: str, n: int = 1) -> None:
        Metrics.counter(METRICS_NAMESPACE, name).inc(n)

    def observe(self, name: str, value: int) -> None:
        Metrics.distribution(METRICS_NAMESPACE, name).update(value)


class RecordingMetrics(EngineMetrics):
    """Holds metrics for work done off the DoFn thread (Beam's metric containers are
    per thread); ``replay`` reports them from the DoFn thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, int] = defaultdict(int)
        self.observed: list[tuple[str, int]] = []

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def observe(self, name: str, value: int) -> None:
        with self._lock:
            self.observed.append((name, value))

    def replay(self, into: EngineMetrics) -> None:
        with self._lock:
            for name, n in self.counters.items():
                if n:
                    into.inc(name, n)
            for name, value in self.observed:
                into.observe(name, value)
            self.counters.clear()
            self.observed.clear()
