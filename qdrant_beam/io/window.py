"""How many requests may be in flight: the one set of concurrency settings (``Concurrency``)
and the AIMD window that moves within them. Pure policy: no threads, no clock.

The sink's upserts, the provider requests and the reindex lookups each take a
``Concurrency``; a fixed limit is ``Concurrency.fixed(n)``.

Many workers, one server: each worker has its own window and nothing coordinates them, so
the settings can say how many workers share the server (``workers``; left unset, the Beam
transforms take it from the runner's options) and, as a hint, how many requests all of them
together may have in flight (``total``): ``Concurrency(total=32).for_workers(64)`` caps each
worker at 0.5. Such a shared window

- may go below one request in flight, down to ``minimum / workers``: the ``Limiter`` then
  paces the sends (a value of 0.25 sends one request per four request-times);
- starts at ``initial / workers`` (the workers together start where one worker would) and
  doubles per success until its first throttle (slow start);
- then grows by at most ``SHARED_GROWTH`` of itself per success (instead of one request
  per window of successes), so that many windows together overshoot the server by a
  bounded share of their requests rather than by one request per worker;
- shrinks at most once per request-time (see ``pacing``).

One worker (``workers`` unset or 1, and no ``total``) moves exactly as before.
"""

from __future__ import annotations

import dataclasses
import math

from qdrant_beam.io.errors import SpecError

__all__ = ["SHARED_DECREASE", "SHARED_GROWTH", "AimdWindow", "Concurrency"]

#: Largest relative growth per success of a shared window (``Concurrency.is_shared``). Each
#: window then grows by a share of itself per success and loses a share of itself per
#: throttle, so the windows together settle where about ``growth / (1 - decrease)`` (5%)
#: of the requests are throttled, or fewer, whatever the number of workers; measured 1-4.5%
#: for 8 to 256 workers in ``bench/bench_workers.py``. Larger: faster, more throttles.
SHARED_GROWTH = 0.025
#: What a throttle leaves of a shared window.
SHARED_DECREASE = 0.5


@dataclasses.dataclass(frozen=True)
class Concurrency:
    """Requests in flight per worker: start at ``initial``, move between ``minimum`` and
    ``maximum`` (additive increase on success, multiplicative decrease on throttling).

    ``workers`` (how many workers share the server, this one included: set it with
    ``for_workers``; ``None``: not said, so one, until a transform applies the runner's
    count) and ``total`` (a hint: at most this many requests in flight for all of
    them together) are for many workers against one server; see the module's
    documentation. By default the window is one worker's, as it always was.

    Usage::

        Concurrency(initial=4, maximum=8)     # adaptive, 1..8
        Concurrency.fixed(2)                  # always 2
        Concurrency(total=32).for_workers(64) # each of 64 workers: 0.5 on average, at most
    """

    initial: int = 4
    minimum: int = 1
    maximum: int = 8
    total: int | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.initial <= self.maximum:
            raise SpecError(
                f"concurrency must satisfy 1 <= minimum <= initial <= maximum, got "
                f"minimum={self.minimum}, initial={self.initial}, maximum={self.maximum}"
            )
        if self.total is not None and self.total < 1:
            raise SpecError(f"concurrency total must be >= 1, got {self.total}")
        if self.workers is not None and self.workers < 1:
            raise SpecError(f"concurrency workers must be >= 1, got {self.workers}")

    @classmethod
    def fixed(cls, n: int) -> Concurrency:
        return cls(initial=n, minimum=n, maximum=n)

    @property
    def is_fixed(self) -> bool:
        return self.minimum == self.maximum

    @property
    def is_shared(self) -> bool:
        """Set for many workers: the window may go below ``minimum``, and is paced there."""
        return (self.sharers > 1 or self.total is not None) and not self.is_fixed

    @property
    def sharers(self) -> int:
        """How many workers share the server (1 when not said)."""
        return self.workers or 1

    @property
    def share(self) -> float | None:
        """This worker's part of ``total`` (``total / workers``), if a total is given."""
        return None if self.total is None else self.total / self.sharers

    def for_workers(self, workers: int) -> Concurrency:
        """These settings for one of ``workers`` workers sharing the server (at least 1):
        what a sink or client takes when the runner says how many workers there are."""
        return dataclasses.replace(self, workers=max(1, int(workers)))

    def window(self) -> AimdWindow:
        if not self.is_shared:
            return AimdWindow(minimum=self.minimum, initial=self.initial, maximum=self.maximum)
        ceiling = float(self.maximum)
        if self.share is not None:
            ceiling = min(ceiling, self.share)
        floor = min(ceiling, self.minimum / self.sharers)
        return AimdWindow(
            minimum=self.minimum,
            maximum=self.maximum,
            # The workers together start where one worker would, and find the rest.
            initial=min(ceiling, max(floor, self.initial / self.sharers)),
            floor=floor,
            ceiling=ceiling,
            growth=SHARED_GROWTH,
            decrease=SHARED_DECREASE,
            # Below a given share, grow as fast as at the share: the total says it is safe.
            growth_from=ceiling if self.share is not None else None,
            slow_start=True,
        )


@dataclasses.dataclass
class AimdWindow:
    """How many requests may be in flight: grows by ``increase`` per ``size`` successes
    (one step per window of acknowledgements, as TCP does), shrinks by ``decrease`` on a
    throttle signal (429, 503, timeout), never below ``minimum`` or above ``maximum``.

    For windows shared by many workers (``Concurrency.window`` sets these; the defaults keep
    the classic window above):

    - ``floor``: the lowest ``value``, may be below ``minimum``. A window with a floor is
      fractional: ``size`` is ``value`` rounded up (at least ``minimum``), and the
      ``Limiter`` paces the sends so that ``value`` requests are in flight on average.
    - ``ceiling``: the highest ``value``, e.g. this worker's share of a total (may be < 1).
    - ``growth``: a success adds at most ``growth * value``, so that windows sharing a
      server grow by a bounded fraction of themselves rather than by one request each.
      Below ``growth_from`` (a value known to be safe, e.g. the share of a total) a success
      adds ``growth * growth_from**2 / value`` (at most ``value``): as fast in time as at
      ``growth_from``, since successes are rarer down there.
    - ``slow_start``: until the first throttle, a success adds ``increase * min(1, value)``
      (the window doubles per round trip), so that a small start finds the server's limit.
    """

    minimum: int = 1
    maximum: int = 8
    initial: float = 4
    increase: float = 1.0
    decrease: float = 0.5
    floor: float | None = None
    ceiling: float | None = None
    growth: float | None = None
    growth_from: float | None = None
    slow_start: bool = False
    _size: float = dataclasses.field(init=False)
    _throttled: bool = dataclasses.field(init=False, default=False)

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise SpecError(
                f"window bounds must satisfy 1 <= minimum <= initial <= maximum, got "
                f"{self.minimum}, {self.initial}, {self.maximum}"
            )
        low, high = self.lowest, self.highest
        if not 0 < low <= high or (self.floor is None and not low <= self.initial <= high):
            raise SpecError(
                f"window bounds must satisfy 1 <= minimum <= initial <= maximum (and "
                f"0 < floor <= ceiling), got {self.minimum}, {self.initial}, {self.maximum}, "
                f"floor={self.floor}, ceiling={self.ceiling}"
            )
        if not 0 < self.decrease < 1 or self.increase <= 0:
            raise SpecError("decrease must be in (0, 1) and increase positive")
        if self.growth is not None and self.growth <= 0:
            raise SpecError(f"growth must be positive, got {self.growth}")
        self._size = min(high, max(low, float(self.initial)))

    @property
    def lowest(self) -> float:
        return float(self.minimum) if self.floor is None else min(self.floor, self.minimum)

    @property
    def highest(self) -> float:
        return float(self.maximum) if self.ceiling is None else min(self.ceiling, self.maximum)

    @property
    def size(self) -> int:
        """Slots: requests that may be in flight at once (at least ``minimum``)."""
        if self.floor is None:
            return max(self.minimum, int(self._size))
        return max(self.minimum, math.ceil(self._size - 1e-9))

    @property
    def value(self) -> float:
        """Requests in flight on average; below ``size`` the sends are paced."""
        return self._size

    @property
    def paced(self) -> bool:
        return self._size < self.size

    def on_success(self) -> None:
        if self.slow_start and not self._throttled:
            step = self.increase * min(1.0, self._size)
        else:
            step = self.increase / max(self._size, 1.0)
            if self.growth is not None:
                step = min(step, self.growth * self._size)
                safe = self.growth_from
                if safe is not None and self._size < safe:
                    # Below a known-safe value, as fast in time as at it (successes are
                    # rarer down here), doubling per success at most.
                    step = min(self._size, self.growth * safe * safe / self._size)
        self._size = min(self.highest, self._size + step)

    def on_throttle(self) -> None:
        self._throttled = True
        self._size = max(self.lowest, self._size * self.decrease)
