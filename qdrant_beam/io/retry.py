"""Retries: which errors to retry and how long to wait (``RetryPolicy``, pure), and the one
loop that does it (``Retrying``), used by the Qdrant sink, the provider clients and the
reindex lookups alike.

Exponential backoff with full jitter (a random wait in [0, min(cap, base * 2**n)]); a
server's ``Retry-After`` is honoured but capped, and counts as an attempt. Both the number
of attempts and the elapsed time are bounded. Only ``TransientError`` is retried.

Usage::

    retrying = Retrying(RetryPolicy(max_attempts=5), clock=FakeClock())
    result = retrying.call(lambda: client.retrieve(...))
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from qdrant_beam.io.clock import Clock, SystemClock
from qdrant_beam.io.errors import (
    QdrantBeamError,
    RateLimited,
    SpecError,
    Timeout,
    TransientError,
    Unavailable,
)

__all__ = ["RetryListener", "RetryPolicy", "Retrying", "is_throttle", "retry_cause"]

T = TypeVar("T")


def is_throttle(error: BaseException) -> bool:
    """A sign the server is overloaded (429, 503, timeout): the in-flight window shrinks."""
    if isinstance(error, (RateLimited, Timeout)):
        return True
    return isinstance(error, Unavailable) and error.status_code == 503


def retry_cause(error: BaseException) -> str:
    """Metric label of a retried error."""
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, Timeout):
        return "timeout"
    if isinstance(error, Unavailable) and error.status_code is not None:
        return f"http_{error.status_code}"
    return "connection"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry a transient failure.

    Args:
        max_attempts: total tries, the first included.
        initial_backoff_s: the first backoff's upper bound.
        max_backoff_s: cap of any one backoff.
        max_retry_after_s: cap of a server's ``Retry-After``.
        deadline_s: no retry starts later than this after the first try.
        jitter: full jitter; off only in tests that want exact waits.
    """

    max_attempts: int = 8
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    max_retry_after_s: float = 30.0
    deadline_s: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise SpecError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("initial_backoff_s", "max_backoff_s", "max_retry_after_s", "deadline_s"):
            if getattr(self, name) < 0:
                raise SpecError(f"{name} must be >= 0, got {getattr(self, name)}")

    def should_retry(self, error: BaseException) -> bool:
        return isinstance(error, TransientError)

    def backoff_s(self, attempt: int, error: BaseException, rng: random.Random) -> float:
        """Wait before try ``attempt + 1`` after ``attempt`` tries failed with ``error``."""
        if isinstance(error, RateLimited) and error.retry_after_s is not None:
            return min(max(0.0, error.retry_after_s), self.max_retry_after_s)
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * (2 ** (attempt - 1)))
        return rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def next_wait_s(
        self, attempt: int, error: BaseException, elapsed_s: float, rng: random.Random
    ) -> float | None:
        """The wait before the next try, or None when the error must not be retried."""
        if not self.should_retry(error) or attempt >= self.max_attempts:
            return None
        wait = self.backoff_s(attempt, error, rng)
        if elapsed_s + wait > self.deadline_s:
            return None
        return wait


class RetryListener(Protocol):
    """Told the outcome of every try: what an AIMD window grows and shrinks on.

    A listener may also have (a ``Limiter`` does) ``on_latency(seconds)``, told how long
    each successful try took; ``pause_for(seconds)``, told each ``Retry-After`` (capped by
    the policy); and ``before_retry()``, which every retry calls after its backoff and which
    may wait (a shared window's pause and pacing), so that every request of the worker
    waits, not only the one that was told.
    """

    def on_success(self) -> None: ...

    def on_throttle(self) -> None: ...


class Retrying:
    """The one retry loop: ``call(action)`` tries until success, a permanent error, or the
    policy's attempts or deadline run out; then the last error is raised with ``attempts``.

    Thread-safe: one instance may serve many threads (the jitter's RNG is locked).

    Args:
        policy: attempts, backoff and deadline.
        clock: for tests; what the waits sleep on.
        rng: seeds the jitter, for reproducible tests.
        listener: told of each try's success or throttling (429, 503, timeout).
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        listener: RetryListener | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._listener = listener

    def call(
        self,
        action: Callable[[], T],
        *,
        on_retry: Callable[[QdrantBeamError, float], None] | None = None,
    ) -> T:
        """``action()``, retried on ``TransientError`` by the policy.

        Args:
            action: one try; raises a ``QdrantBeamError`` (translate other errors inside it).
            on_retry: called with the error and the wait before each retry (for metrics).

        Raises:
            QdrantBeamError: the last error, with ``attempts`` set to the tries made.
        """
        started = self._clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            sent = self._clock.monotonic()
            try:
                result = action()
            except QdrantBeamError as exc:
                if self._listener is not None and is_throttle(exc):
                    self._listener.on_throttle()
                    self._report_pause(exc)
                elapsed = self._clock.monotonic() - started
                with self._rng_lock:
                    wait = self.policy.next_wait_s(attempt, exc, elapsed, self._rng)
                if wait is None:
                    exc.attempts = attempt  # type: ignore[attr-defined]
                    raise
                if on_retry is not None:
                    on_retry(exc, wait)
                self._clock.sleep(wait)
                self._before_retry()
                continue
            if self._listener is not None:
                on_latency = getattr(self._listener, "on_latency", None)
                if on_latency is not None:
                    on_latency(self._clock.monotonic() - sent)
                self._listener.on_success()
            return result

    def _report_pause(self, error: QdrantBeamError) -> None:
        pause_for = getattr(self._listener, "pause_for", None)
        retry_after = error.retry_after_s if isinstance(error, RateLimited) else None
        if pause_for is not None and retry_after is not None:
            pause_for(min(retry_after, self.policy.max_retry_after_s))

    def _before_retry(self) -> None:
        before_retry = getattr(self._listener, "before_retry", None)
        if before_retry is not None:
            before_retry()
