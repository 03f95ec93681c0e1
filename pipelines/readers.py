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

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.coders import BytesCoder
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PBegin, PCollection

from qdrant_beam.io.errors import SpecError
from qdrant_beam.pipelines.formats import (
    CSV_FIELD_LIMIT,
    MAX_DEAD_LETTER_CHARS,
    ArrowRows,
    ParseJsonLines,
    ReadCsvFile,
    plain_value,
)
from qdrant_beam.pipelines.options import INPUT_FORMATS
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS
from qdrant_beam.transforms.outputs import AnnotatedTransform
from qdrant_beam.transforms.spec import CHUNK_FIELD, PointsSpec, load_spec
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
    if spec.chunks is not None:
        templates.append(spec.chunks.text)
    fields: dict[str, None] = {}  # ordered set
    for source in templates:
        for path in Template.parse(source).fields:
            if path != CHUNK_FIELD:  # a chunk's text, not a record field
                fields[path.split(".", 1)[0]] = None
    for key in spec.payload.include:
        fields[key] = None
    return list(fields)


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
                | "ToRows" >> beam.ParDo(ArrowRows())
            )
            dead = pbegin | "NoDeadLetters" >> beam.Create([])
            return ReadOutputs(records, dead)
        if self._format == "jsonl":
            lines = pbegin | "ReadText" >> beam.io.ReadFromTextWithFilename(
                self._pattern, coder=BytesCoder(), validate=False
            )
            parsed = lines | "ParseJson" >> beam.ParDo(ParseJsonLines(self._columns)).with_outputs(
                DEAD_LETTERS, main="records"
            )
        else:
            files = (
                pbegin
                | "MatchFiles" >> fileio.MatchFiles(self._pattern)
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadMatches" >> fileio.ReadMatches()
            )
            parsed = files | "ParseCsv" >> beam.ParDo(ReadCsvFile(self._columns)).with_outputs(
                DEAD_LETTERS, main="records"
            )
        return ReadOutputs(parsed.records, parsed[DEAD_LETTERS])
