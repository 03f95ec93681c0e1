"""Retry policy: which errors to retry, and how long to wait. Pure: no I/O, no clock reads.

Exponential backoff with full jitter (a random wait in [0, min(cap, base * 2**n)]); a
server's ``Retry-After`` is honoured but capped, and counts as an attempt. Both the number
of attempts and the elapsed time are bounded.
"""

from __future__ import annotations

import dataclasses
import random

from qdrant_beam.transforms.errors import (
    RateLimited,
    SpecError,
    Timeout,
    TransientError,
    Unavailable,
)

__all__ = ["RetryPolicy", "is_throttle", "retry_cause"]


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
