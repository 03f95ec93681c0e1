"""How many requests may be in flight: the one set of concurrency settings (``Concurrency``)
and the AIMD window that moves within them. Pure policy: no threads, no clock.

The sink's upserts, the provider requests and the reindex lookups each take a
``Concurrency``; a fixed limit is ``Concurrency.fixed(n)``.
"""

from __future__ import annotations

import dataclasses

from qdrant_beam.io.errors import SpecError

__all__ = ["AimdWindow", "Concurrency"]


@dataclasses.dataclass(frozen=True)
class Concurrency:
    """Requests in flight per worker: start at ``initial``, move between ``minimum`` and
    ``maximum`` (additive increase on success, multiplicative decrease on throttling).

    Usage::

        Concurrency(initial=4, maximum=8)     # adaptive, 1..8
        Concurrency.fixed(2)                  # always 2
    """

    initial: int = 4
    minimum: int = 1
    maximum: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.initial <= self.maximum:
            raise SpecError(
                f"concurrency must satisfy 1 <= minimum <= initial <= maximum, got "
                f"minimum={self.minimum}, initial={self.initial}, maximum={self.maximum}"
            )

    @classmethod
    def fixed(cls, n: int) -> Concurrency:
        return cls(initial=n, minimum=n, maximum=n)

    @property
    def is_fixed(self) -> bool:
        return self.minimum == self.maximum

    def window(self) -> AimdWindow:
        return AimdWindow(minimum=self.minimum, initial=self.initial, maximum=self.maximum)


@dataclasses.dataclass
class AimdWindow:
    """How many requests may be in flight: grows by ``increase`` per ``size`` successes
    (one step per window of acknowledgements, as TCP does), shrinks by ``decrease`` on a
    throttle signal (429, 503, timeout), never below ``minimum`` or above ``maximum``."""

    minimum: int = 1
    maximum: int = 8
    initial: int = 4
    increase: float = 1.0
    decrease: float = 0.5
    _size: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.initial <= self.maximum:
            raise SpecError(
                f"window bounds must satisfy 1 <= minimum <= initial <= maximum, got "
                f"{self.minimum}, {self.initial}, {self.maximum}"
            )
        if not 0 < self.decrease < 1 or self.increase <= 0:
            raise SpecError("decrease must be in (0, 1) and increase positive")
        self._size = float(self.initial)

    @property
    def size(self) -> int:
        return int(self._size)

    def on_success(self) -> None:
        self._size = min(float(self.maximum), self._size + self.increase / max(self._size, 1.0))

    def on_throttle(self) -> None:
        self._size = max(float(self.minimum), self._size * self.decrease)
