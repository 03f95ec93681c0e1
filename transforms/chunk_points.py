"""Chunk points: one point per chunk of a record's long text, and what keeps them consistent.

Each chunk point's id is a UUIDv5 of (record key, chunk index), so a re-run overwrites it.
Its payload holds ``parent_id`` (the record's own point id, as text), ``chunk_index``,
``chunk_count``, ``chunk_span`` ([start, end) in the chunked text), the payload fields the
spec keeps, and optionally ``chunk_text``. Vectors whose template reads ``{chunk}`` are
computed per chunk; the others once per record (the engine dedupes their identical inputs)
and copied to every chunk.

A record's chunk points travel as one ``ChunkGroup``: the sink deletes the record's chunks
past the new count and then upserts the group in one request, so a shrunk record leaves no
stale chunk and a crash leaves the record's old or new chunks, never a mix the next
incremental run would take for current.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from qdrant_client import models

from qdrant_beam.io.errors import InvalidRecord
from qdrant_beam.transforms.backends.registry import InputKind
from qdrant_beam.transforms.dead_letters import FailedRecord
from qdrant_beam.transforms.mapping import MappedRecord, RecordMapper, chunk_point_id, id_text
from qdrant_beam.transforms.spec import CHUNK_FIELD
from qdrant_beam.transforms.templates import Template

__all__ = [
    "CHUNKS",
    "COUNT_FIELD",
    "INDEX_FIELD",
    "PARENT_FIELD",
    "SPAN_FIELD",
    "TEXT_FIELD",
    "ChunkGroup",
    "ChunkPoints",
    "group_chunks",
]

#: The chunker of chunk points, beside the chunkers of chunked vectors (by vector name).
CHUNKS = "chunks"
PARENT_FIELD = "parent_id"
INDEX_FIELD = "chunk_index"
COUNT_FIELD = "chunk_count"
SPAN_FIELD = "chunk_span"
TEXT_FIELD = "chunk_text"


class ChunkGroup(NamedTuple):
    """All the chunk points of one record, written together."""

    parent_id: str
    points: list[models.PointStruct]


class ChunkPoints:
    """Maps a record to its chunk points (``MappedRecord``s) for a spec with ``chunks``."""

    def __init__(self, mapper: RecordMapper) -> None:
        spec = mapper.spec
        assert spec.chunks is not None  # only built for chunk-point specs
        self._mapper = mapper
        self._chunks = spec.chunks
        self._text = Template.parse(spec.chunks.text)
        self._per_chunk = [
            (name, v.model, dict(v.options) or None, Template.parse(v.template))
            for name, v in spec.vectors.items()
            if CHUNK_FIELD in Template.parse(v.template).fields
        ]

    def map(self, record: Any) -> list[MappedRecord]:
        """One mapped record per chunk; raises ``InvalidRecord`` naming the problem."""
        mapper = self._mapper
        whole = mapper.map(record)  # the id, the per-record vectors, the payload
        text = self._text.render_text(record)
        if not text.strip():
            raise InvalidRecord(f"chunks: text from {self._text.source!r} is empty or whitespace")
        chunks = mapper.split(CHUNKS, text)
        key = mapper.key(record)
        parent = id_text(whole.id)
        out = []
        for chunk in chunks:
            fields = {**record, CHUNK_FIELD: chunk.text}
            inputs = list(whole.inputs)
            for name, model, options, template in self._per_chunk:
                value = template.render_text(fields)
                if not value.strip():
                    raise InvalidRecord(f"vector {name!r}: chunk {chunk.index} renders empty text")
                inputs.append((name, InputKind.TEXT, value, model, options))
            payload = {
                **(whole.payload or {}),
                PARENT_FIELD: parent,
                INDEX_FIELD: chunk.index,
                COUNT_FIELD: len(chunks),
                SPAN_FIELD: [chunk.start, chunk.end],
            }
            if self._chunks.include_text:
                payload[TEXT_FIELD] = chunk.text
            pid = chunk_point_id(key, chunk.index, mapper.spec)
            out.append(MappedRecord(pid, inputs, payload))
        return out


def group_chunks(
    points: Sequence[models.PointStruct], failed: Sequence[FailedRecord]
) -> tuple[list[Any], list[FailedRecord]]:
    """Resolved chunk points as one ``ChunkGroup`` per record. A record with a failed chunk is
    not written at all (its dead letter is its first failed chunk): half a record's chunks
    would pass for the whole record."""
    failed_parents: set[str] = set()
    dead: list[FailedRecord] = []
    for record in failed:
        payload = getattr(record.record, "payload", None) or {}
        parent = payload.get(PARENT_FIELD)
        if parent is None or parent not in failed_parents:
            dead.append(record)
        if parent is not None:
            failed_parents.add(parent)
    groups: dict[str, list[models.PointStruct]] = {}
    for point in points:
        parent = (point.payload or {})[PARENT_FIELD]
        if parent not in failed_parents:
            groups.setdefault(parent, []).append(point)
    return [ChunkGroup(parent, members) for parent, members in groups.items()], dead
