"""The record formats: DoFns that turn JSONL lines, CSV files and Parquet tables into plain dict
records, and anything they cannot read into a ``FailedRecord`` at stage ``read``.

Values are plain Python so that downstream payload and dead-letter JSON never meet an
unexpected type (the rules are in ``readers``' module docstring).
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io import fileio
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage

__all__ = [
    "CSV_FIELD_LIMIT",
    "MAX_DEAD_LETTER_CHARS",
    "ArrowRows",
    "ParseJsonLines",
    "ReadCsvFile",
    "plain_value",
    "project",
]

_LOG = logging.getLogger(__name__)
NAMESPACE = "qdrant_beam.read"

#: Raw lines and CSV fields in dead letters are cut to this many characters.
MAX_DEAD_LETTER_CHARS = 10_000


def project(record: dict[str, Any], columns: Sequence[str] | None) -> dict[str, Any]:
    """Only the top-level fields in ``columns`` (all when None)."""
    if columns is None:
        return record
    return {key: record[key] for key in columns if key in record}


# --------------------------------------------------------------------------------------------
# Plain values


_SCALARS = (str, int, float, bool, type(None), bytes)


def plain_value(value: Any) -> Any:
    """A value as plain, JSON-friendly Python (see the module docstring for the rules)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {key: plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            # Arrow maps arrive as lists of (key, value) pairs.
            return {str(key): plain_value(item) for key, item in value}
        return [plain_value(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _microsecond_type(kind: pa.DataType) -> pa.DataType:
    """``kind`` with nanosecond units replaced by microseconds, nested types included."""
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        return pa.timestamp("us", kind.tz)
    if pa.types.is_duration(kind) and kind.unit == "ns":
        return pa.duration("us")
    if pa.types.is_time64(kind) and kind.unit == "ns":
        return pa.time64("us")
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_microsecond_type(f.type)) for f in kind])
    if pa.types.is_map(kind):
        return pa.map_(
            kind.key_field.with_type(_microsecond_type(kind.key_type)),
            kind.item_field.with_type(_microsecond_type(kind.item_type)),
        )
    if pa.types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(_microsecond_type(kind.value_type)))
    if pa.types.is_fixed_size_list(kind):
        return pa.list_(
            kind.value_field.with_type(_microsecond_type(kind.value_type)), kind.list_size
        )
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_microsecond_type(kind.value_type)))
    return kind


class ArrowRows(beam.DoFn):
    """Arrow tables to plain dict rows; nanosecond times are cast first, else pyarrow raises."""

    def __init__(self) -> None:
        self._read = Metrics.counter(NAMESPACE, "records_read")

    def process(self, table: pa.Table) -> Iterator[dict[str, Any]]:
        schema = pa.schema([f.with_type(_microsecond_type(f.type)) for f in table.schema])
        if not schema.equals(table.schema):
            table = table.cast(schema, safe=False)
        rows = table.to_pylist()
        self._read.inc(len(rows))
        for row in rows:
            yield {key: plain_value(value) for key, value in row.items()}


# --------------------------------------------------------------------------------------------
# JSONL


def _clip(text: str) -> str:
    return text[:MAX_DEAD_LETTER_CHARS]


class ParseJsonLines(beam.DoFn):
    """One JSON object per line; anything else is a dead letter carrying the raw line."""

    def __init__(self, columns: Sequence[str] | None) -> None:
        self._columns = columns
        self._read = Metrics.counter(NAMESPACE, "records_read")
        self._dead = Metrics.counter(NAMESPACE, "dead_letters")
        self._parsed = 0

    def start_bundle(self) -> None:
        self._parsed = 0  # counted per bundle: one metric update, not one per line

    def finish_bundle(self) -> None:
        if self._parsed:
            self._read.inc(self._parsed)
            self._parsed = 0

    def process(self, element: tuple[str, bytes]) -> Iterator[Any]:
        source, raw = element
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield self._fail(
                raw.decode("utf-8", "replace"), source, "InvalidUTF8", f"line is not UTF-8: {exc}"
            )
            return
        line = line.removeprefix("\ufeff")
        if not line.strip():
            return
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            message = f"{exc.msg} at column {exc.colno} (char {exc.pos})"
            yield self._fail(line, source, "InvalidJSON", message)
            return
        except (ValueError, RecursionError) as exc:  # huge integers, deep nesting
            yield self._fail(line, source, "InvalidJSON", str(exc) or type(exc).__name__)
            return
        if not isinstance(value, dict):
            message = f"a JSONL line must hold a JSON object, got {type(value).__name__}"
            yield self._fail(line, source, "NotAnObject", message)
            return
        self._parsed += 1
        yield project(value, self._columns)

    def _fail(self, line: str, source: str, error_type: str, message: str) -> TaggedOutput:
        self._dead.inc()
        record = {"line": _clip(line), "source": source}
        return TaggedOutput(DEAD_LETTERS, FailedRecord(record, Stage.READ, error_type, message))


# --------------------------------------------------------------------------------------------
# CSV


class _RawReader(io.RawIOBase):
    """Adapts Beam's file objects (``CompressedFile`` is not an ``io`` object) for io/csv."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


#: Longest CSV field accepted, in characters (Python's default, 128 Ki, is too small for the
#: long documents people embed). ``csv.field_size_limit`` is per process; it is only raised.
CSV_FIELD_LIMIT = 64 * 1024 * 1024

#: Undecodable bytes, kept by the ``surrogateescape`` error handler; a UTF-8 decode never
#: yields these otherwise, so finding one means the row held invalid UTF-8.
_ESCAPED = re.compile("[\udc80-\udcff]")


def _readable(field: str) -> str:
    return _clip(field.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


class ReadCsvFile(beam.DoFn):
    """Streams one CSV file row by row; a row whose field count differs from the header's, or
    that holds invalid UTF-8, becomes a dead letter with its (first) line number.

    ``csv.reader`` rather than ``DictReader``: it yields the raw field list (what a dead letter
    should show) and lets blank rows be skipped here, so line numbers stay exact. Bytes are
    decoded with ``surrogateescape`` so a bad byte costs its row, not the decoder's whole chunk.
    """

    def __init__(self, columns: Sequence[str] | None) -> None:
        self._columns = columns
        self._read = Metrics.counter(NAMESPACE, "records_read")
        self._dead = Metrics.counter(NAMESPACE, "dead_letters")

    def setup(self) -> None:
        if csv.field_size_limit() < CSV_FIELD_LIMIT:
            csv.field_size_limit(CSV_FIELD_LIMIT)

    def process(self, readable: fileio.ReadableFile) -> Iterator[Any]:
        path = readable.metadata.path
        raw = io.BufferedReader(_RawReader(readable.open()), buffer_size=1 << 20)
        with io.TextIOWrapper(
            raw, encoding="utf-8-sig", errors="surrogateescape", newline=""
        ) as text:
            yield from self._rows(csv.reader(text), path)

    def _rows(self, reader: Any, path: str) -> Iterator[Any]:
        header: list[str] | None = None
        picks: list[tuple[str, int]] = []
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # parsing cannot resynchronise reliably after this
                message = f"{exc}; the rest of the file was not read"
                yield self._fail(None, start, path, "InvalidCSV", message)
                return
            line, start = start, reader.line_num + 1
            if not row:
                continue
            invalid_utf8 = _ESCAPED.search("\x00".join(row)) is not None
            if header is None:
                problem = "holds invalid UTF-8" if invalid_utf8 else ""
                duplicates = sorted({name for name in row if row.count(name) > 1})
                if duplicates:
                    problem = f"repeats {', '.join(map(repr, duplicates))}"
                if problem:
                    message = f"the header {problem}; the file was not read"
                    yield self._fail(row, line, path, "InvalidHeader", message)
                    return
                header = row
                wanted = header if self._columns is None else self._columns
                missing = [c for c in wanted if c not in header]
                if missing:
                    _LOG.warning("%s has no column(s) %s", path, ", ".join(missing))
                picks = [(name, header.index(name)) for name in wanted if name in header]
                continue
            if len(row) != len(header):
                kind = "TooManyFields" if len(row) > len(header) else "TooFewFields"
                message = f"row has {len(row)} fields, the header has {len(header)}"
                yield self._fail(row, line, path, kind, message)
                continue
            if invalid_utf8:
                yield self._fail(row, line, path, "InvalidUTF8", "row is not valid UTF-8")
                continue
            self._read.inc()
            yield {name: row[index] for name, index in picks}

    def _fail(
        self, row: list[str] | None, line: int, path: str, error_type: str, message: str
    ) -> TaggedOutput:
        self._dead.inc()
        record = {
            "row": None if row is None else [_readable(field) for field in row],
            "line": line,
            "source": path,
        }
        return TaggedOutput(DEAD_LETTERS, FailedRecord(record, Stage.READ, error_type, message))
