"""The in-flight window: additive increase on success, multiplicative decrease on throttling.

Pure policy; the sink feeds it outcomes and asks for the current limit.
"""

from __future__ import annotations

import dataclasses

from qdrant_beam.transforms.errors import SpecError

__all__ = ["AimdWindow"]


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
