"""A bounded number of requests in flight per worker: the backpressure of every client here.

``Limiter`` holds the count: ``acquire`` blocks while the AIMD window is full, and the
window grows and shrinks on the outcomes it is told (it is the ``RetryListener`` of a
``Retrying``). ``InFlight`` runs work items on threads through a limiter, so a DoFn's
``process`` stops taking input when the server slows down; ``flush`` waits for everything,
so a bundle never reports success before its work is done.

Usage::

    limiter = Limiter(Concurrency(initial=4, maximum=8))
    with limiter.slot():            # one request; throttles shrink the window
        send()
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from qdrant_beam.io.retry import is_throttle
from qdrant_beam.io.window import Concurrency

__all__ = ["InFlight", "Limiter"]

T = TypeVar("T")
R = TypeVar("R")


class Limiter:
    """At most ``window.size`` holders at once; thread-safe."""

    def __init__(self, concurrency: Concurrency) -> None:
        self.concurrency = concurrency
        self._window = concurrency.window()
        self._cond = threading.Condition()
        self._in_flight = 0
        self.max_in_flight_seen = 0
        self.blocked_s = 0.0

    @property
    def size(self) -> int:
        return self._window.size

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> None:
        """Take a slot; blocks while the window is full (the caller's backpressure)."""
        started = time.perf_counter()
        with self._cond:
            while self._in_flight >= self._window.size:
                self._cond.wait()
            self._in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
            self.blocked_s += time.perf_counter() - started

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def on_success(self) -> None:
        with self._cond:
            self._window.on_success()
            self._cond.notify_all()

    def on_throttle(self) -> None:
        with self._cond:
            self._window.on_throttle()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One request: a slot while it runs, and its outcome fed to the window (success,
        or a throttle for 429/503/timeouts; other errors leave the window as it is)."""
        self.acquire()
        try:
            yield
        except BaseException as exc:
            if is_throttle(exc):
                self.on_throttle()
            raise
        else:
            self.on_success()
        finally:
            self.release()


class InFlight(Generic[T, R]):
    """Runs ``work(item)`` on threads, at most ``limiter.size`` at once.

    A work item holds its slot until it is done, retries and their waits included; the
    limiter also listens to each try (pass it as the ``Retrying`` listener inside ``work``).
    """

    def __init__(
        self, work: Callable[[T], R], limiter: Limiter, *, name: str = "qdrant-beam"
    ) -> None:
        self._work = work
        self.limiter = limiter
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=limiter.concurrency.maximum, thread_name_prefix=name
        )
        self._done: list[tuple[Any, R | BaseException]] = []
        self._idle = threading.Condition(self._lock)
        self._running = 0

    def submit(self, item: T, tag: Any = None) -> None:
        """Start ``work(item)``; blocks while the window is full."""
        self.limiter.acquire()
        with self._lock:
            self._running += 1
        future = self._pool.submit(self._work, item)
        future.add_done_callback(lambda f: self._finish(f, tag))

    def _finish(self, future: concurrent.futures.Future[R], tag: Any) -> None:
        error = future.exception()
        with self._lock:
            self._done.append((tag, error if error is not None else future.result()))
            self._running -= 1
            self._idle.notify_all()
        self.limiter.release()

    def completed(self) -> list[tuple[Any, R | BaseException]]:
        """Results finished so far, each with its tag; an exception if the work raised."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def flush(self) -> list[tuple[Any, R | BaseException]]:
        """Wait until nothing is in flight; return everything not yet collected."""
        with self._lock:
            while self._running:
                self._idle.wait()
        return self.completed()

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
