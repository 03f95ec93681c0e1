"""Field templates such as ``"{title}. {body}"`` rendered over a record.

A template that is exactly one placeholder (``"{image}"``) yields the field's value as
it is, so bytes and integers pass through untouched; any other template renders text.
Placeholders are dotted paths into nested dicts (``{meta.author}``); ``{{``/``}}`` are
literal braces.
"""

from __future__ import annotations

import dataclasses
import functools
import string
from collections.abc import Mapping
from typing import Any

from qdrant_beam.io.errors import InvalidRecord, SpecError

__all__ = ["MISSING", "Template", "as_text"]

_FORMATTER = string.Formatter()


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Returned by ``lookup`` for a path that is not in the record.
MISSING: Any = _Missing()


def _lookup(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


@dataclasses.dataclass(frozen=True)
class Template:
    """A parsed template; ``fields`` lists the dotted field paths it reads."""

    source: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        if not isinstance(source, str) or not source:
            raise SpecError(f"template must be a non-empty string, got {source!r}")
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(_FORMATTER.parse(source))
        except ValueError as exc:
            raise SpecError(f"template {source!r} is malformed: {exc}") from None
        for literal, field, format_spec, conversion in parsed:
            if field is not None:
                if not field or any(not p for p in field.split(".")):
                    raise SpecError(f"template {source!r} has an empty placeholder name")
                if format_spec or conversion:
                    raise SpecError(
                        f"template {source!r}: placeholder {{{field}}} may not carry a format "
                        f"spec or conversion; write just {{{field}}}"
                    )
                if "[" in field:
                    raise SpecError(
                        f"template {source!r}: use dotted paths ({{a.b}}), not indexing"
                    )
            parts.append((literal, field))
        if not any(field for _, field in parts):
            raise SpecError(f"template {source!r} reads no field; write e.g. '{{text}}'")
        return cls(source, tuple(parts))

    @functools.cached_property
    def fields(self) -> tuple[str, ...]:
        return tuple(field for _, field in self.parts if field is not None)

    @functools.cached_property
    def _paths(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((field, tuple(field.split("."))) for field in self.fields)

    @functools.cached_property
    def is_single_field(self) -> bool:
        return len(self.parts) == 1 and self.parts[0][0] == "" and self.parts[0][1] is not None

    def values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Each field's raw value; raises ``InvalidRecord`` naming a missing or null field."""
        out: dict[str, Any] = {}
        for field, path in self._paths:
            value = record.get(field, MISSING) if len(path) == 1 else _lookup(record, path)
            if value is MISSING:
                raise InvalidRecord(f"field {field!r} is missing from the record")
            if value is None:
                raise InvalidRecord(f"field {field!r} is null")
            out[field] = value
        return out

    def _single_value(self, record: Mapping[str, Any]) -> Any:
        """The one field's value (``is_single_field``): the per-record hot path, no dict."""
        field, path = self._paths[0]
        value = record.get(field, MISSING) if len(path) == 1 else _lookup(record, path)
        if value is MISSING:
            raise InvalidRecord(f"field {field!r} is missing from the record")
        if value is None:
            raise InvalidRecord(f"field {field!r} is null")
        return value

    def render_raw(self, record: Mapping[str, Any]) -> Any:
        """The value of a single-field template as it is, otherwise the rendered text."""
        if self.is_single_field:
            return self._single_value(record)
        return self._join(self.values(record))

    def render_text(self, record: Mapping[str, Any]) -> str:
        """Render as text; every field must be a string or UTF-8 bytes."""
        if self.is_single_field:
            value = self._single_value(record)
            return value if isinstance(value, str) else as_text(value, self.fields[0])
        values = self.values(record)
        for field, value in values.items():
            values[field] = as_text(value, field)
        return self._join(values)

    def _join(self, values: Mapping[str, Any]) -> str:
        out = []
        for literal, field in self.parts:
            out.append(literal)
            if field is not None:
                out.append(str(values[field]))
        return "".join(out)


def as_text(value: Any, field: str) -> str:
    """A field value as text: strings pass, UTF-8 bytes decode, anything else is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRecord(
                f"field {field!r} holds bytes that are not valid UTF-8 "
                f"(byte {exc.start}: {bytes(value)[exc.start : exc.start + 1]!r})"
            ) from None
    raise InvalidRecord(f"field {field!r} must be a string, got {type(value).__name__} {value!r}")
