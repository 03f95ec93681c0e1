"""The dead-letter record every transform emits for input it could not handle."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["DEAD_LETTERS", "REDACTED", "FailedRecord", "Stage", "is_secret_key", "scrub_secrets"]

REDACTED = "<redacted>"
_SECRET_NAMES = frozenset({"api_key", "api-key", "authorization"})
_SECRET_SUFFIXES = ("_api_key", "-api-key")


def is_secret_key(key: Any) -> bool:
    """Whether a mapping key names a secret whose value must never be kept or written."""
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def _scrub_mapping(value: Mapping[Any, Any]) -> tuple[dict[Any, Any], bool]:
    out: dict[Any, Any] = {}
    changed = False
    for key, item in value.items():
        if is_secret_key(key):
            out[key] = REDACTED
            changed = True
        else:
            out[key], sub = _scrub(item)
            changed = changed or sub
    return out, changed


def _scrub(value: Any) -> tuple[Any, bool]:
    if isinstance(value, Mapping):
        return _scrub_mapping(value)
    if isinstance(value, list):
        items = [_scrub(v) for v in value]
        if any(changed for _, changed in items):
            return [v for v, _ in items], True
        return value, False
    options = getattr(value, "options", None)  # Document / Image / InferenceObject
    if isinstance(options, Mapping) and hasattr(value, "model_copy"):
        clean, changed = _scrub_mapping(options)
        return (value.model_copy(update={"options": clean}), True) if changed else (value, False)
    vector = getattr(value, "vector", None)  # PointStruct
    if hasattr(value, "payload") and hasattr(value, "model_copy"):
        new_vector, v_changed = _scrub(vector)
        new_payload, p_changed = _scrub(value.payload) if value.payload else (value.payload, False)
        if v_changed or p_changed:
            return value.model_copy(update={"vector": new_vector, "payload": new_payload}), True
    return value, False


def scrub_secrets(record: Any) -> Any:
    """``record`` with the values of secret-named keys replaced (a copy only when needed):
    in dicts at any depth, in a point's payload, and in inference objects' options, where
    per-request keys such as ``openai-api-key`` travel."""
    return _scrub(record)[0]


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "record", scrub_secrets(self.record))

    @classmethod
    def from_exception(
        cls, record: Any, stage: str, exc: BaseException, attempts: int = 1
    ) -> FailedRecord:
        return cls(record, stage, type(exc).__name__, str(exc), attempts)
