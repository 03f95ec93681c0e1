"""A bounded number of requests in flight per worker: the backpressure of the sink.

``submit`` blocks while the AIMD window is full, so a DoFn's ``process`` stops taking input
when Qdrant slows down. Requests run on a thread pool; ``flush`` waits for all of them, so a
bundle never reports success before its points are written. The reindex's hash lookups use
it too, to overlap their round trips with the reading and hashing of the next records.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from qdrant_beam.connectors.window import AimdWindow

__all__ = ["InFlight", "windowed"]

T = TypeVar("T")
R = TypeVar("R")


class InFlight(Generic[T, R]):
    """Runs ``work(item)`` on threads, at most ``window.size`` at once.

    ``window`` is also the listener the work reports successes and throttles to, through
    ``on_success``/``on_throttle`` here, which take the lock and wake blocked submitters.
    """

    def __init__(
        self, work: Callable[[T], R], window: AimdWindow, *, name: str = "qdrant-beam-write"
    ) -> None:
        self._work = work
        self._window = window
        self._cond = threading.Condition()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=window.maximum, thread_name_prefix=name
        )
        self._in_flight = 0
        self._done: list[tuple[Any, R | BaseException]] = []
        self.max_in_flight_seen = 0
        self.blocked_s = 0.0

    # Window feedback, called from the worker threads.
    def on_success(self) -> None:
        with self._cond:
            self._window.on_success()
            self._cond.notify_all()

    def on_throttle(self) -> None:
        with self._cond:
            self._window.on_throttle()

    @property
    def window_size(self) -> int:
        return self._window.size

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, item: T, tag: Any = None) -> None:
        """Start ``work(item)``; blocks while the window is full."""
        started = time.perf_counter()
        with self._cond:
            while self._in_flight >= self._window.size:
                self._cond.wait()
            self._in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
        self.blocked_s += time.perf_counter() - started
        future = self._pool.submit(self._work, item)
        future.add_done_callback(lambda f: self._finish(f, tag))

    def _finish(self, future: concurrent.futures.Future[R], tag: Any) -> None:
        error = future.exception()
        with self._cond:
            self._done.append((tag, error if error is not None else future.result()))
            self._in_flight -= 1
            self._cond.notify_all()

    def completed(self) -> list[tuple[Any, R | BaseException]]:
        """Results finished so far, each with its tag; an exception if the work raised."""
        with self._cond:
            done, self._done = self._done, []
        return done

    def flush(self) -> list[tuple[Any, R | BaseException]]:
        """Wait until nothing is in flight; return everything not yet collected."""
        with self._cond:
            while self._in_flight:
                self._cond.wait()
        return self.completed()

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)


def windowed(value: Any, window: Any, timestamp: Any) -> Any:
    """A result in the window of the input it came from (it may finish in a later call, or in
    ``finish_bundle``, where Beam needs it windowed explicitly)."""
    if isinstance(value, beam.pvalue.TaggedOutput):
        return beam.pvalue.TaggedOutput(value.tag, WindowedValue(value.value, timestamp, (window,)))
    return WindowedValue(value, timestamp, (window,))
