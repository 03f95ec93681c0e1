"""When a shared window's next request may start. Pure policy: times are arguments.

A worker whose window is shared with many others (``Concurrency.workers > 1``) waits for
two things before it sends, besides a free slot:

- a pause: a server's ``Retry-After`` holds back every request of the worker, not only the
  one that was told, since the others would only be told the same. Up to ``PAUSE_JITTER``
  of it is added at random, so that workers told at once do not all come back at once, and
  it doubles with each pause in a row that ended in another refusal (until a success),
  since then the server's estimate was one client's, not that of all the workers;
- pacing: a window below its slots (a value of 0.25 with one slot) sends one request per
  ``latency / value`` seconds, so that ``value`` requests are in flight on average.

It also decides which throttles shrink the window: at most one per latency, as TCP halves
once per round trip, so that the requests already in flight when the server pushed back do
not halve the window again each.

``Limiter`` uses it with its clock, and ``bench/bench_workers.py`` with a simulated one.
"""

from __future__ import annotations

import dataclasses
import math

from qdrant_beam.io.window import AimdWindow

__all__ = ["MAX_PAUSE_DOUBLINGS", "PAUSE_JITTER", "Pacer"]

#: A pause lasts the server's ``Retry-After`` plus up to this share of it, at random: many
#: workers told the same ``Retry-After`` at once do not all come back in the same instant.
PAUSE_JITTER = 0.5
#: Pauses in a row double the ``Retry-After`` at most this many times.
MAX_PAUSE_DOUBLINGS = 5


@dataclasses.dataclass
class Pacer:
    """The earliest time a worker's next request may start.

    Args:
        smoothing: weight of the newest latency in the moving average.
    """

    smoothing: float = 0.2
    latency_s: float | None = None
    paused_until: float = -math.inf
    next_at: float = -math.inf
    decreased_at: float = -math.inf
    pauses_in_row: int = 0

    def ready_at(self) -> float:
        """No request starts before this time."""
        return max(self.paused_until, self.next_at)

    def wait_s(self, now: float) -> float:
        """How long a request that wants to start at ``now`` must wait."""
        return max(0.0, self.ready_at() - now)

    def on_send(self, now: float, window: AimdWindow) -> None:
        """A request starts at ``now``: the next one waits ``latency / value`` if the window
        is paced (below its slots) and a latency is known."""
        if window.paced and self.latency_s is not None:
            self.next_at = max(self.next_at, now) + self.latency_s / window.value
        else:
            self.next_at = -math.inf

    def on_success(self, latency_s: float) -> None:
        """A request succeeded after ``latency_s``: what a send normally takes."""
        latency_s = max(0.0, latency_s)
        if self.latency_s is None:
            self.latency_s = latency_s
        else:
            self.latency_s += self.smoothing * (latency_s - self.latency_s)
        self.pauses_in_row = 0

    def should_decrease(self, now: float) -> bool:
        """A throttle at ``now``: shrink the window, or not. Not before a latency is known
        (the window was not paced yet: a throttle then says that every worker started at
        once, not that this one sends too much), and at most once per latency."""
        if self.latency_s is None or now - self.decreased_at < self.latency_s:
            return False
        self.decreased_at = now
        return True

    def on_retry_after(self, now: float, seconds: float, *, cap_s: float, jitter: float) -> float:
        """A server said ``Retry-After: seconds`` at ``now``: pause every request, and return
        how long. ``jitter`` is a random number in [0, 1) (the caller's generator)."""
        if now >= self.paused_until:  # a new pause: the last one, if any, did not help
            self.pauses_in_row += 1
        doublings = min(self.pauses_in_row - 1, MAX_PAUSE_DOUBLINGS)
        pause = min(cap_s, max(0.0, seconds) * 2**doublings) * (1 + PAUSE_JITTER * jitter)
        self.pause_until(now + pause)
        return pause

    def pause_until(self, t: float) -> None:
        """No request starts before ``t``; pauses only extend."""
        self.paused_until = max(self.paused_until, t)
