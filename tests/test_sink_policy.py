"""Pure sink policy: retry waits, throttle signals, the AIMD window. No clock, no sleeps."""

from __future__ import annotations

import random

import pytest

from qdrant_beam.connectors import AimdWindow, FakeClock, RetryPolicy
from qdrant_beam.io.errors import (
    InvalidRecord,
    RateLimited,
    SpecError,
    Timeout,
    Unavailable,
)
from qdrant_beam.io.retry import is_throttle, retry_cause


def test_backoff_is_exponential_and_capped_without_jitter() -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=1.0, jitter=False)
    rng = random.Random(0)
    waits = [policy.backoff_s(n, Unavailable("x"), rng) for n in range(1, 7)]
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=5.0)
    rng = random.Random(1)
    for attempt in range(1, 8):
        ceiling = min(5.0, 0.1 * 2 ** (attempt - 1))
        waits = [policy.backoff_s(attempt, Timeout("t"), rng) for _ in range(50)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # really spread over the range


def test_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy(max_retry_after_s=3.0)
    rng = random.Random(0)
    assert policy.backoff_s(1, RateLimited("429", 2.0), rng) == 2.0
    assert policy.backoff_s(1, RateLimited("429", 600.0), rng) == 3.0
    assert policy.backoff_s(1, RateLimited("429", -5.0), rng) == 0.0


def test_attempts_and_deadline_bound_retries() -> None:
    policy = RetryPolicy(max_attempts=3, deadline_s=10.0, jitter=False, initial_backoff_s=1.0)
    rng = random.Random(0)
    error = Unavailable("503", 503)
    assert policy.next_wait_s(1, error, 0.0, rng) == 1.0
    assert policy.next_wait_s(2, error, 0.0, rng) == 2.0
    assert policy.next_wait_s(3, error, 0.0, rng) is None  # attempts used up
    assert policy.next_wait_s(1, error, 9.5, rng) is None  # would pass the deadline
    # A Retry-After counts as an attempt too.
    assert policy.next_wait_s(3, RateLimited("429", 0.0), 0.0, rng) is None


def test_only_transient_errors_are_retried() -> None:
    policy = RetryPolicy()
    rng = random.Random(0)
    assert policy.next_wait_s(1, InvalidRecord("bad"), 0.0, rng) is None
    assert policy.next_wait_s(1, ValueError("bug"), 0.0, rng) is None


@pytest.mark.parametrize(
    ("error", "throttle", "cause"),
    [
        (RateLimited("429", 1.0), True, "rate_limited"),
        (Timeout("t"), True, "timeout"),
        (Unavailable("503", 503), True, "http_503"),
        (Unavailable("500", 500), False, "http_500"),
        (Unavailable("reset"), False, "connection"),
    ],
)
def test_throttle_signals_and_causes(error: Exception, throttle: bool, cause: str) -> None:
    assert is_throttle(error) is throttle
    assert retry_cause(error) == cause


def test_policy_validates() -> None:
    with pytest.raises(SpecError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(SpecError):
        RetryPolicy(deadline_s=-1)


def test_aimd_window_grows_additively_and_halves_on_throttle() -> None:
    window = AimdWindow(minimum=1, initial=4, maximum=8)
    for _ in range(5):  # about one window of acknowledgements adds one slot
        window.on_success()
    assert window.size == 5
    window.on_throttle()
    assert window.size == 2
    window.on_throttle()
    window.on_throttle()
    assert window.size == 1  # never below the minimum
    for _ in range(200):
        window.on_success()
    assert window.size == 8  # never above the maximum


def test_aimd_window_validates() -> None:
    with pytest.raises(SpecError):
        AimdWindow(minimum=3, initial=2, maximum=8)
    with pytest.raises(SpecError):
        AimdWindow(decrease=1.5)


def test_fake_clock_sleeps_without_waiting() -> None:
    clock = FakeClock()
    clock.sleep(2.5)
    clock.sleep(-1)
    assert clock.monotonic() == 2.5 and clock.slept == [2.5, -1]
