"""The policy for many workers sharing one server (``qdrant_beam.io``): shared windows,
pacing, pauses, retries first. FakeClock only: nothing here sleeps for real."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from conftest import Listener

from qdrant_beam.io import AimdWindow, Concurrency, FakeClock, Limiter, Pacer, Retrying
from qdrant_beam.io.errors import InvalidRecord, RateLimited, SpecError, Unavailable
from qdrant_beam.io.retry import RetryPolicy
from qdrant_beam.io.window import SHARED_GROWTH


def classic(size: float, success: bool) -> float:
    """Today's window rule, written out: +1/size per success, x0.5 per throttle, 1..8."""
    return min(8.0, size + 1 / max(size, 1.0)) if success else max(1.0, size * 0.5)


# -- Concurrency ------------------------------------------------------------------------------
def test_one_worker_is_the_classic_window() -> None:
    for concurrency in (Concurrency(), Concurrency().for_workers(1), Concurrency(4, 1, 8)):
        assert not concurrency.is_shared
        window = concurrency.window()
        assert window.floor is None and window.growth is None and not window.slow_start
    window, size = Concurrency().window(), 4.0
    rng = random.Random(3)
    for _ in range(2_000):
        success = rng.random() < 0.8
        window.on_success() if success else window.on_throttle()
        size = classic(size, success)
        assert window.value == pytest.approx(size) and window.size == int(size)


def test_for_workers_and_total_make_a_shared_window() -> None:
    shared = Concurrency().for_workers(64)
    assert shared.is_shared and shared.workers == 64 and shared.share is None
    window = shared.window()
    assert window.floor == pytest.approx(1 / 64)  # all of them together: one request
    assert window.value == pytest.approx(4 / 64)  # ...and start where one worker would
    assert window.highest == 8 and window.size == 1 and window.paced

    capped = Concurrency(total=32).for_workers(64)
    assert capped.share == 0.5
    assert capped.window().highest == 0.5
    assert Concurrency(total=100).for_workers(4).window().highest == 8  # never above maximum
    assert Concurrency(total=8).is_shared  # a total alone: one worker with a cap of 8
    assert not Concurrency.fixed(2).for_workers(64).is_shared  # a fixed limit stays fixed
    assert Concurrency().for_workers(0).workers == 1


def test_concurrency_validates_the_new_fields() -> None:
    with pytest.raises(SpecError):
        Concurrency(total=0)
    with pytest.raises(SpecError):
        Concurrency(workers=0)
    assert Concurrency(2, 1, 4) == Concurrency(initial=2, minimum=1, maximum=4)  # positional


# -- AimdWindow -------------------------------------------------------------------------------
def test_a_fractional_window_goes_below_one_slot_and_rounds_slots_up() -> None:
    window = AimdWindow(minimum=1, maximum=8, initial=1, floor=0.1)
    for _ in range(10):
        window.on_throttle()
    assert window.value == pytest.approx(0.1) and window.size == 1 and window.paced
    window = AimdWindow(minimum=1, maximum=8, initial=2.5, floor=0.1)
    assert window.size == 3 and window.paced  # 2.5 on average: three slots, paced
    window = AimdWindow(minimum=1, maximum=8, initial=3, floor=0.1)
    assert window.size == 3 and not window.paced


def test_shared_growth_is_a_bounded_share_of_the_window() -> None:
    window = AimdWindow(minimum=1, maximum=8, initial=0.5, floor=0.01, growth=0.02)
    window.on_success()
    assert window.value == pytest.approx(0.5 * 1.02)  # not +1 as the classic window would
    big = AimdWindow(minimum=1, maximum=100, initial=60, floor=0.01, growth=0.02)
    big.on_success()
    assert big.value == pytest.approx(60 + 1 / 60)  # large windows: the classic step
    given = AimdWindow(minimum=1, maximum=8, initial=0.1, floor=0.01, growth=0.02, growth_from=0.5)
    given.on_success()  # below a known-safe share: as fast in time as at the share
    assert given.value == pytest.approx(0.1 + 0.02 * 0.5 * 0.5 / 0.1)
    successes = 1
    while given.value < 0.5:
        given.on_success()
        successes += 1
    assert successes < 30  # at a bounded share of itself from 0.1, it would take 81
    above = given.value
    given.on_success()
    assert given.value == pytest.approx(above * 1.02)  # then the bounded share again


def test_slow_start_doubles_until_the_first_throttle() -> None:
    window = AimdWindow(
        minimum=1, maximum=8, initial=0.125, floor=0.01, growth=SHARED_GROWTH, slow_start=True
    )
    for expected in (0.25, 0.5, 1.0, 2.0, 3.0):
        window.on_success()
        assert window.value == pytest.approx(expected)
    window.on_throttle()
    assert window.value == pytest.approx(1.5)
    window.on_success()
    assert window.value == pytest.approx(1.5 * (1 + SHARED_GROWTH))


def test_ceiling_caps_a_shared_window() -> None:
    window = AimdWindow(minimum=1, maximum=8, initial=0.1, floor=0.01, ceiling=0.5, slow_start=True)
    for _ in range(10):
        window.on_success()
    assert window.value == 0.5 and window.size == 1 and window.paced


def test_window_validation_keeps_the_classic_rules() -> None:
    with pytest.raises(SpecError):
        AimdWindow(minimum=3, initial=2, maximum=8)
    with pytest.raises(SpecError):
        AimdWindow(floor=0.0)
    with pytest.raises(SpecError):
        AimdWindow(growth=-1)
    assert AimdWindow(initial=0.01, floor=0.1).value == 0.1  # a fractional start is clamped


# -- Pacer ------------------------------------------------------------------------------------
def test_pacing_spaces_sends_by_latency_over_value() -> None:
    window = AimdWindow(minimum=1, maximum=8, initial=0.25, floor=0.01)
    pacer = Pacer()
    pacer.on_send(0.0, window)
    assert pacer.wait_s(0.0) == 0  # no latency known yet: nothing to space by
    pacer.on_success(0.5)
    pacer.on_send(1.0, window)
    assert pacer.ready_at() == pytest.approx(1.0 + 0.5 / 0.25)
    assert pacer.wait_s(2.0) == pytest.approx(1.0)
    unpaced = AimdWindow(minimum=1, maximum=8, initial=2, floor=0.01)
    pacer.on_send(3.0, unpaced)
    assert pacer.wait_s(3.0) == 0


def test_latency_is_a_moving_average() -> None:
    pacer = Pacer(smoothing=0.5)
    pacer.on_success(1.0)
    pacer.on_success(3.0)
    assert pacer.latency_s == pytest.approx(2.0)


def test_decrease_at_most_once_per_latency_and_not_before_one_is_known() -> None:
    pacer = Pacer()
    assert not pacer.should_decrease(0.0)  # everybody started at once: no evidence yet
    pacer.on_success(1.0)
    assert pacer.should_decrease(5.0)
    assert not pacer.should_decrease(5.5)  # in flight with the first: same signal
    assert pacer.should_decrease(6.0)


def test_retry_after_pauses_with_jitter_and_doubles_in_a_row() -> None:
    pacer = Pacer()
    assert pacer.on_retry_after(10.0, 2.0, cap_s=60, jitter=0.0) == 2.0
    assert pacer.ready_at() == 12.0
    assert pacer.on_retry_after(11.0, 2.0, cap_s=60, jitter=0.0) == 2.0  # same pause
    assert pacer.on_retry_after(13.0, 2.0, cap_s=60, jitter=0.0) == 4.0  # it did not help
    assert pacer.on_retry_after(20.0, 2.0, cap_s=60, jitter=0.5) == pytest.approx(8 * 1.25)
    assert pacer.on_retry_after(40.0, 100.0, cap_s=60, jitter=0.0) == 60.0  # capped
    pacer.on_success(0.1)
    assert pacer.on_retry_after(200.0, 2.0, cap_s=60, jitter=0.0) == 2.0  # a success resets
    pacer.pause_until(100.0)  # pauses only extend
    assert pacer.ready_at() == 202.0


# -- Limiter ----------------------------------------------------------------------------------
def shared_limiter(clock: FakeClock, **kwargs: Any) -> Limiter:
    return Limiter(Concurrency().for_workers(4), clock=clock, rng=random.Random(0), **kwargs)


def test_one_worker_limiter_never_waits_on_the_clock() -> None:
    clock = FakeClock()
    limiter = Limiter(Concurrency(), clock=clock)
    limiter.pause_for(30.0)  # ignored: the request that was told waits, as always
    for _ in range(3):
        with pytest.raises(Unavailable), limiter.slot():
            raise Unavailable("503", 503)
    assert limiter.size == 1  # 4 -> 2 -> 1 -> 1: every throttle counts, as always
    with limiter.slot():
        pass
    limiter.before_retry()
    assert clock.slept == [] and limiter.blocked_s == 0


def test_shared_limiter_paces_below_one_slot() -> None:
    clock = FakeClock()
    limiter = shared_limiter(clock)  # 4 / 4 workers: a value of 1.0
    with limiter.slot():
        clock.advance(0.2)  # the request takes 0.2 s: the latency
    for _ in range(3):  # 1.0 -> 2.0 (slow start), then a throttle -> 1.0 ...
        with pytest.raises(Unavailable), limiter.slot():
            clock.advance(0.2)
            raise Unavailable("503", 503)
        clock.advance(1.0)
    value = limiter.value
    assert value == pytest.approx(0.25) and limiter.size == 1  # the floor: 1 / 4 workers
    with limiter.slot():
        pass
    with limiter.slot():
        pass
    assert clock.slept == [pytest.approx(0.2 / value)]  # one latency per value
    assert limiter.blocked_s == pytest.approx(0.2 / value)


def test_shared_limiter_pauses_every_request_on_retry_after() -> None:
    clock = FakeClock()
    limiter = shared_limiter(clock)
    with pytest.raises(RateLimited), limiter.slot():
        raise RateLimited("429", 3.0)
    with limiter.slot():  # another request of the same worker waits too
        pass
    assert len(clock.slept) == 1 and 3.0 <= clock.slept[0] <= 4.5
    limiter.pause_for(1000.0)
    before = clock.monotonic()
    limiter.acquire()
    limiter.release()
    assert clock.monotonic() - before <= 60 * 1.5 + 1e-9  # capped at max_pause_s, jittered


def test_retrying_tells_the_limiter_and_waits_for_it() -> None:
    clock = FakeClock()
    limiter = shared_limiter(clock)
    limiter.acquire()  # a batch holds its slot through its retries, as InFlight does
    script: list[Exception | None] = [RateLimited("429", 2.0), None]

    def action() -> str:
        clock.advance(0.1)
        outcome = script.pop(0)
        if outcome is not None:
            raise outcome
        return "ok"

    retrying = Retrying(RetryPolicy(), clock=clock, rng=random.Random(1), listener=limiter)
    assert retrying.call(action) == "ok"
    limiter.release()
    # The 2 s Retry-After, then before_retry: the rest of the worker's jittered pause.
    assert clock.slept[0] == 2.0 and 0 <= sum(clock.slept[1:]) <= 1.0
    assert limiter._pacer.latency_s == pytest.approx(0.1)  # on_latency: the successful try


def test_retrying_with_a_plain_listener_is_unchanged() -> None:
    clock = FakeClock()
    listener = Listener()
    retrying = Retrying(
        RetryPolicy(max_retry_after_s=5.0), clock=clock, rng=random.Random(0), listener=listener
    )
    script: list[Exception | None] = [RateLimited("429", 7.0), Unavailable("503", 503), None]

    def action() -> None:
        outcome = script.pop(0)
        if outcome is not None:
            raise outcome

    retrying.call(action)
    assert listener.events == ["throttle", "throttle", "success"]
    assert clock.slept[0] == 5.0 and len(clock.slept) == 2

    def refused() -> None:
        raise InvalidRecord("bad")

    with pytest.raises(InvalidRecord):
        retrying.call(refused)
    assert len(clock.slept) == 2  # a permanent error: no retry, no wait


def test_a_retry_takes_the_slot_before_new_requests() -> None:
    clock = FakeClock()
    limiter = Limiter(Concurrency(initial=2, minimum=1, maximum=2).for_workers(2), clock=clock)
    assert limiter.size == 1
    order: list[str] = []
    retry_failed = threading.Event()
    go_retry = threading.Event()

    def retrier() -> None:
        with pytest.raises(Unavailable), limiter.slot():
            raise Unavailable("reset")  # transient, not a throttle: the window stays
        retry_failed.set()
        go_retry.wait(5)
        with limiter.slot():
            order.append("retry")

    limiter.acquire()  # the slot is busy
    thread = threading.Thread(target=retrier)
    limiter.release()
    thread.start()
    retry_failed.wait(5)
    limiter.acquire()  # busy again; both the retry and a new request wait for it

    def newcomer_sends() -> None:
        limiter.acquire()
        order.append("new")

    newcomer = threading.Thread(target=newcomer_sends)
    go_retry.set()
    while limiter._retries_waiting == 0:
        threading.Event().wait(0.001)
    newcomer.start()
    limiter.release()
    thread.join(5)
    newcomer.join(5)
    assert order == ["retry", "new"]
