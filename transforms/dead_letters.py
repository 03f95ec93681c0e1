"""The dead-letter record every transform emits for input it could not handle."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["DEAD_LETTERS", "FailedRecord", "Stage"]

#: Tag of the dead-letter output of every DoFn in this package.
DEAD_LETTERS = "dead_letters"


class Stage:
    """Stable names of the stages a record can fail in."""

    MAP = "map"
    INFERENCE = "inference"
    WRITE = "write"
    READ = "read"


@dataclasses.dataclass(frozen=True)
class FailedRecord:
    """A record that failed, where, and why. Nothing here may carry a secret.

    ``record`` is the input as the failing stage saw it (a dict for ``map``, a
    ``PointStruct`` for ``inference`` and ``write``).
    """

    record: Any
    stage: str
    error_type: str
    message: str
    attempts: int = 1

    @classmethod
    def from_exception(
        cls, record: Any, stage: str, exc: BaseException, attempts: int = 1
    ) -> FailedRecord:
        return cls(record, stage, type(exc).__name__, str(exc), attempts)
