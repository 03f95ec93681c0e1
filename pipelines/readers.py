"""Read records (dicts) from JSONL, Parquet or CSV files on any Beam filesystem.

``ReadRecords`` returns ``ReadOutputs(records, dead_letters)``: a line or row that cannot be
read becomes a ``FailedRecord`` at stage ``read`` instead of failing the job, so one bad line
in a billion-line input costs one dead letter, not a rerun.

Values are plain Python so that downstream payload and dead-letter JSON never meet an
unexpected type:

* JSONL: whatever ``json.loads`` gives (dict, list, str, int, float, bool, None).
* Parquet: timestamps, dates and times become ISO 8601 strings (nanosecond units are truncated
  to microseconds first, since Python's datetime holds no finer), durations become seconds as
  a float, decimals become floats (lossy past ~15 significant digits), maps become dicts,
  binary stays ``bytes``.
* CSV: every value is a string; an empty field stays ``""`` (not None), since CSV cannot tell
  an empty string from a missing value and guessing would change the payload.
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
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.coders import BytesCoder
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PBegin, PCollection, TaggedOutput

from qdrant_beam.io.errors import SpecError
from qdrant_beam.pipelines.options import INPUT_FORMATS
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.outputs import AnnotatedTransform
from qdrant_beam.transforms.spec import PointsSpec, load_spec
from qdrant_beam.transforms.templates import Template

__all__ = [
    "COMPRESSION_SUFFIXES",
    "COUNT_LIMIT_BYTES",
    "CSV_FIELD_LIMIT",
    "MAX_DEAD_LETTER_CHARS",
    "ReadOutputs",
    "ReadRecords",
    "check_input",
    "count_records",
    "fields_used",
    "infer_format",
    "plain_value",
]

_LOG = logging.getLogger(__name__)
_NAMESPACE = "qdrant_beam.read"

#: Raw lines and CSV fields in dead letters are cut to this many characters.
MAX_DEAD_LETTER_CHARS = 10_000

#: ``count_records`` reads JSONL/CSV files only when they total less than this.
COUNT_LIMIT_BYTES = 512 * 1024 * 1024

#: Suffixes Beam decompresses on the fly (``CompressionTypes.AUTO``); text formats only.
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".deflate", ".zst", ".zstd", ".xz", ".lzma")

_FORMAT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}


class ReadOutputs(NamedTuple):
    """What ``ReadRecords`` returns; unpacks as ``records, dead_letters``."""

    records: PCollection
    dead_letters: PCollection


# --------------------------------------------------------------------------------------------
# Formats


def infer_format(pattern: str) -> str:
    """The input format from the pattern's extension, so ``--format`` is rarely needed.

    Raises:
        SpecError: the extension is unknown (a bare glob such as ``data/*``, say), or a
            Parquet file carries a compression suffix (Parquet compresses inside the file).
    """
    name = pattern.rstrip("/").rsplit("/", 1)[-1].lower()
    compression = next((s for s in COMPRESSION_SUFFIXES if name.endswith(s)), "")
    stem = name[: len(name) - len(compression)]
    for suffix, fmt in _FORMAT_SUFFIXES.items():
        if stem.endswith(suffix):
            if compression and fmt == "parquet":
                raise SpecError(
                    f"cannot read {pattern!r}: Parquet files are compressed internally and may "
                    f"not end in {compression!r}; decompress them or rename to .parquet"
                )
            return fmt
    known = ", ".join(_FORMAT_SUFFIXES)
    raise SpecError(
        f"cannot infer the input format of {pattern!r} from its extension (known: {known}, "
        f"text formats optionally followed by {', '.join(COMPRESSION_SUFFIXES)}); "
        f"pass the format explicitly, e.g. --format jsonl (one of {', '.join(INPUT_FORMATS)})"
    )


def _resolve_format(pattern: str, format: str | None) -> str:
    if format is None:
        return infer_format(pattern)
    if format not in INPUT_FORMATS:
        raise SpecError(f"unknown input format {format!r}; use one of {', '.join(INPUT_FORMATS)}")
    return format


def check_input(pattern: str) -> int:
    """How many files match ``pattern``; raises ``SpecError`` naming it when none do.

    Beam's text sources fail the same way, but with a traceback from deep in the graph, and
    its file matcher lets a glob that matches nothing read zero records without a word.
    """
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as exc:  # BeamIOError and the filesystems' own errors
        raise SpecError(f"cannot list the input {pattern!r}: {exc}") from None
    if not matched:
        raise SpecError(f"no input files match {pattern!r}")
    return len(matched)


# --------------------------------------------------------------------------------------------
# Projection


def fields_used(spec: PointsSpec | Mapping[str, Any]) -> list[str] | None:
    """Top-level record fields the spec reads, to project Parquet/CSV columns; None for all.

    The id template, every vector's text/image template and ``payload.include`` count. When
    the payload keeps every field (no ``include``) nothing can be dropped, so this is None.
    Nested paths (``{meta.author}``) need their whole top-level field (``meta``).
    """
    if not isinstance(spec, PointsSpec):
        spec = load_spec(dict(spec))
    if spec.payload.include is None:
        return None
    templates = [spec.id, *(vector.template for vector in spec.vectors.values())]
    fields: dict[str, None] = {}  # ordered set
    for source in templates:
        for path in Template.parse(source).fields:
            fields[path.split(".", 1)[0]] = None
    for key in spec.payload.include:
        fields[key] = None
    return list(fields)


def _project(record: dict[str, Any], columns: Sequence[str] | None) -> dict[str, Any]:
    if columns is None:
        return record
    return {key: record[key] for key in columns if key in record}


# --------------------------------------------------------------------------------------------
# Counting


def count_records(pattern: str, format: str | None = None) -> int | None:
    """A cheap record count for a progress ETA; None when it would not be cheap or fails.

    Parquet: the sum of row counts in the file footers. JSONL/CSV: newlines counted (less one
    header line per CSV file), only when every file is uncompressed and they total less than
    ``COUNT_LIMIT_BYTES``; blank lines and quoted newlines make this approximate. It never
    raises for I/O problems: an ETA is not worth failing a job over.
    """
    fmt = _resolve_format(pattern, format)
    try:
        files = FileSystems.match([pattern])[0].metadata_list
        if fmt == "parquet":
            total = 0
            for meta in files:
                with FileSystems.open(
                    meta.path, compression_type=CompressionTypes.UNCOMPRESSED
                ) as handle:
                    total += pq.ParquetFile(handle).metadata.num_rows
            return total
        if any(
            CompressionTypes.detect_compression_type(meta.path) != CompressionTypes.UNCOMPRESSED
            for meta in files
        ):
            return None
        if sum(meta.size_in_bytes for meta in files) >= COUNT_LIMIT_BYTES:
            return None
        total = 0
        for meta in files:
            lines = _count_lines(meta.path)
            total += max(lines - 1, 0) if fmt == "csv" else lines
        return total
    except Exception as exc:  # best effort by design
        _LOG.warning("could not count the records of %s: %s", pattern, exc)
        return None


def _count_lines(path: str) -> int:
    """Newlines in the file, plus one for a last line without one."""
    lines = 0
    last = b"\n"
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


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


class _ArrowRows(beam.DoFn):
    """Arrow tables to plain dict rows; nanosecond times are cast first, else pyarrow raises."""

    def __init__(self) -> None:
        self._read = Metrics.counter(_NAMESPACE, "records_read")

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


class _ParseJsonLines(beam.DoFn):
    """One JSON object per line; anything else is a dead letter carrying the raw line."""

    def __init__(self, columns: Sequence[str] | None) -> None:
        self._columns = columns
        self._read = Metrics.counter(_NAMESPACE, "records_read")
        self._dead = Metrics.counter(_NAMESPACE, "dead_letters")
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
        yield _project(value, self._columns)

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


class _ReadCsvFile(beam.DoFn):
    """Streams one CSV file row by row; a row whose field count differs from the header's, or
    that holds invalid UTF-8, becomes a dead letter with its (first) line number.

    ``csv.reader`` rather than ``DictReader``: it yields the raw field list (what a dead letter
    should show) and lets blank rows be skipped here, so line numbers stay exact. Bytes are
    decoded with ``surrogateescape`` so a bad byte costs its row, not the decoder's whole chunk.
    """

    def __init__(self, columns: Sequence[str] | None) -> None:
        self._columns = columns
        self._read = Metrics.counter(_NAMESPACE, "records_read")
        self._dead = Metrics.counter(_NAMESPACE, "dead_letters")

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


# --------------------------------------------------------------------------------------------
# The transform


class ReadRecords(AnnotatedTransform):
    """Read dict records from files; returns ``ReadOutputs(records, dead_letters)``.

    Args:
        pattern: a file or glob on any Beam filesystem (local, gs://, s3://, ...).
        format: ``jsonl``, ``parquet`` or ``csv``; inferred from the extension when None.
        columns: keep only these top-level fields (``fields_used(spec)`` gives them); Parquet
            reads only these columns from disk, CSV and JSONL drop the rest after parsing.
        validate: check now that some file matches ``pattern`` (``check_input``); turn off
            for inputs that will exist only when the pipeline runs.

    JSONL and Parquet files are split across workers by Beam; a CSV file is read by one worker
    (a quoted newline makes splitting unsafe), but files are spread across workers. Parquet
    goes through ``ReadFromParquetBatched`` (the same source as ``ReadFromParquet``) so that
    whole Arrow tables can be cast before becoming Python rows; its rows are typed, so its
    dead-letter output is always empty (an unreadable file fails the job, as it should).
    """

    def __init__(
        self,
        pattern: str,
        format: str | None = None,
        columns: Sequence[str] | None = None,
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self._pattern = pattern
        self._format = _resolve_format(pattern, format)
        if validate:
            check_input(pattern)
        if columns is not None:
            if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
                raise SpecError(f"columns must be a list of field names, got {columns!r}")
            if not columns:
                raise SpecError("columns is empty; pass None to read every column")
        self._columns = list(columns) if columns is not None else None

    @property
    def format(self) -> str:
        return self._format

    def expand(self, pbegin: PBegin) -> ReadOutputs:
        if self._format == "parquet":
            records = (
                pbegin
                | "ReadParquet"
                >> beam.io.ReadFromParquetBatched(
                    self._pattern, columns=self._columns, validate=False
                )
                | "ToRows" >> beam.ParDo(_ArrowRows())
            )
            dead = pbegin | "NoDeadLetters" >> beam.Create([])
            return ReadOutputs(records, dead)
        if self._format == "jsonl":
            lines = pbegin | "ReadText" >> beam.io.ReadFromTextWithFilename(
                self._pattern, coder=BytesCoder(), validate=False
            )
            parsed = lines | "ParseJson" >> beam.ParDo(_ParseJsonLines(self._columns)).with_outputs(
                DEAD_LETTERS, main="records"
            )
        else:
            files = (
                pbegin
                | "MatchFiles" >> fileio.MatchFiles(self._pattern)
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadMatches" >> fileio.ReadMatches()
            )
            parsed = files | "ParseCsv" >> beam.ParDo(_ReadCsvFile(self._columns)).with_outputs(
                DEAD_LETTERS, main="records"
            )
        return ReadOutputs(parsed.records, parsed[DEAD_LETTERS])
