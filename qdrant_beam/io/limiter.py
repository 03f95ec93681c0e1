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

    # one of 64 workers sharing a server: paced below one request, paused by Retry-After
    limiter = Limiter(Concurrency().for_workers(64), clock=clock)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from qdrant_beam.io.clock import Clock, SystemClock
from qdrant_beam.io.errors import RateLimited, TransientError
from qdrant_beam.io.pacing import Pacer
from qdrant_beam.io.retry import is_throttle
from qdrant_beam.io.window import Concurrency

__all__ = ["InFlight", "Limiter"]

T = TypeVar("T")
R = TypeVar("R")


class Limiter:
    """At most ``window.size`` holders at once; thread-safe.

    A shared window (``Concurrency.is_shared``: ``workers > 1`` or a ``total``; see
    ``window``) also waits, before a request starts, for the worker's pause (``pause_for``:
    a server's ``Retry-After``, which ``slot`` and a ``Retrying`` with this limiter as its
    listener report) and for its pacing when the window's value is below its slots (see
    ``pacing``); retries go before new requests; and it shrinks at most once per latency.
    Every wait is the clock's (pass the ``Retrying``'s clock), so tests with a ``FakeClock``
    never sleep. One worker's window (the default) neither pauses nor paces nor reorders: it
    behaves as it always did.

    Args:
        concurrency: the window's settings.
        clock: what pauses and pacing wait on, and ``blocked_s`` is measured with.
        rng: the pauses' jitter, for reproducible tests.
        max_pause_s: cap of one pause (a ``Retry-After`` of an hour pauses this long).
    """

    def __init__(
        self,
        concurrency: Concurrency,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        max_pause_s: float = 60.0,
    ) -> None:
        self.concurrency = concurrency
        self.clock: Clock = clock or SystemClock()
        self.max_pause_s = max_pause_s
        self._rng = rng or random.Random()
        self._window = concurrency.window()
        self._pacer = Pacer()
        self._shared = concurrency.is_shared
        self._cond = threading.Condition()
        self._local = threading.local()  # per thread: did its last slot end in a retry?
        self._retries_waiting = 0
        self._in_flight = 0
        self.max_in_flight_seen = 0
        self.blocked_s = 0.0

    @property
    def size(self) -> int:
        return self._window.size

    @property
    def value(self) -> float:
        """The window's value: requests in flight on average (below ``size`` when paced)."""
        return self._window.value

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> None:
        """Take a slot; blocks while the window is full (the caller's backpressure), and for
        a shared window while the worker is paused or paced, or a retry is waiting (a retry
        goes first: it was sent once already)."""
        started = self.clock.monotonic()
        retry = self._shared and getattr(self._local, "retry", False)
        with self._cond:
            self._retries_waiting += retry
            try:
                while True:
                    full = self._in_flight >= self._window.size
                    if full or (not retry and self._retries_waiting):
                        self._cond.wait()
                        continue
                    if not self._wait_for_pacer():
                        break
            finally:
                self._retries_waiting -= retry
                self._cond.notify_all()
            self._in_flight += 1
            now = self.clock.monotonic()
            if self._shared:
                self._pacer.on_send(now, self._window)
            self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
            self.blocked_s += now - started

    def before_retry(self) -> None:
        """A request that holds its slot through its retries (``InFlight``'s work, with this
        limiter as the ``Retrying`` listener) is about to be sent again: for a shared window
        it waits for the pause and the pacing like a new one (ahead of new ones), and counts
        as a send."""
        if not self._shared:
            return
        started = self.clock.monotonic()
        with self._cond:
            self._retries_waiting += 1
            try:
                while self._wait_for_pacer():
                    pass
            finally:
                self._retries_waiting -= 1
                self._cond.notify_all()
            now = self.clock.monotonic()
            self._pacer.on_send(now, self._window)
            self.blocked_s += now - started

    def _wait_for_pacer(self) -> bool:
        """With the lock held: sleep (without it) if the pacer says so; whether it slept."""
        if not self._shared:
            return False
        wait = self._pacer.wait_s(self.clock.monotonic())
        if wait <= 0:
            return False
        self._cond.release()  # sleep without the lock: slots may be released meanwhile
        try:
            self.clock.sleep(wait)
        finally:
            self._cond.acquire()
        return True

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def on_success(self) -> None:
        with self._cond:
            self._window.on_success()
            self._cond.notify_all()

    def on_latency(self, seconds: float) -> None:
        """A successful request took this long: what a shared window's pacing spaces by."""
        if self._shared:
            with self._cond:
                self._pacer.on_success(seconds)

    def on_throttle(self) -> None:
        """A throttle (429, 503, timeout); a shared window shrinks at most once per latency."""
        with self._cond:
            if not self._shared or self._pacer.should_decrease(self.clock.monotonic()):
                self._window.on_throttle()

    def pause_for(self, seconds: float) -> None:
        """A server said to wait (``Retry-After``): a shared window starts nothing for that
        long (see ``Pacer.on_retry_after``: jittered, doubled by pauses in a row, capped at
        ``max_pause_s``); one worker's window ignores it (the request that was told waits,
        as it always did)."""
        if not self._shared or seconds <= 0:
            return
        with self._cond:
            now = self.clock.monotonic()
            self._pacer.on_retry_after(
                now, seconds, cap_s=self.max_pause_s, jitter=self._rng.random()
            )

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One request: a slot while it runs, and its outcome fed to the window (success,
        or a throttle for 429/503/timeouts; other errors leave the window as it is). A
        ``Retry-After`` pauses a shared window. After a transient error, the thread's next
        slot is taken as a retry: in a shared window it goes before new requests."""
        self.acquire()
        started = self.clock.monotonic()
        try:
            yield
        except BaseException as exc:
            self._local.retry = isinstance(exc, TransientError)
            if is_throttle(exc):
                self.on_throttle()
                if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
                    self.pause_for(exc.retry_after_s)
            raise
        else:
            self._local.retry = False
            self.on_latency(self.clock.monotonic() - started)
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
