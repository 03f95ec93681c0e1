"""Turn one record into a ``PointStruct`` whose vectors are inference objects.

Pure functions over a validated spec, so the DoFn in ``records_to_points`` stays thin and
the rules (ids, payload, input checks) are unit-testable without Beam.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import hashlib
import math
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

from qdrant_client import models

from qdrant_beam.io.errors import InvalidRecord
from qdrant_beam.transforms.backends.registry import InputKind
from qdrant_beam.transforms.construct import construct
from qdrant_beam.transforms.spec import CHUNK_FIELD, PointsSpec
from qdrant_beam.transforms.templates import Template, as_text

__all__ = [
    "MappedRecord",
    "RecordMapper",
    "VectorInput",
    "chunk_point_id",
    "id_text",
    "point_id",
]

_MAX_UINT64 = 2**64 - 1
_SCALARS = frozenset((str, int, bool, type(None)))
_UUID_TEXT_LENGTHS = frozenset((32, 36, 38, 45))  # hex, hyphenated, {braced}, urn:uuid:


@functools.lru_cache(maxsize=64)
def _uuid5_prefix(namespace: uuid.UUID, collection: str) -> Any:
    return hashlib.sha1(namespace.bytes + f"{collection}/".encode())


def _uuid5_text(namespace: uuid.UUID, collection: str, key: str) -> str:
    """``str(uuid.uuid5(namespace, f"{collection}/{key}"))`` in a sixth of the time: the
    namespace and collection are hashed once, and the text is formatted from the digest."""
    digest = _uuid5_prefix(namespace, collection).copy()
    digest.update(key.encode("utf-8"))
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def point_id(key: Any, *, collection: str, namespace: uuid.UUID) -> int | str:
    """Qdrant point id for a record key: integers and UUIDs as they are, else a UUIDv5.

    A string of decimal digits without leading zeros counts as an integer, so that the same
    record read from CSV (all strings) and from JSONL gets the same id.
    """
    if isinstance(key, bool):
        raise InvalidRecord(f"point id must be an integer or a string, got bool {key!r}")
    if isinstance(key, int):
        if 0 <= key <= _MAX_UINT64:
            return key
        return _uuid5_text(namespace, collection, str(key))
    if isinstance(key, uuid.UUID):
        return str(key)
    if isinstance(key, (bytes, bytearray)):
        key = as_text(key, "id")
    if not isinstance(key, str):
        raise InvalidRecord(f"point id must be an integer or a string, got {type(key).__name__}")
    if not key.strip():
        raise InvalidRecord("point id is empty")
    if key.isdecimal() and key.isascii() and (key == "0" or not key.startswith("0")):
        value = int(key)
        if value <= _MAX_UINT64:
            return value
    if len(key) in _UUID_TEXT_LENGTHS:
        try:
            return str(uuid.UUID(key))
        except ValueError:
            pass
    return _uuid5_text(namespace, collection, key)


def chunk_point_id(key: Any, index: int, spec: PointsSpec) -> str:
    """The id of chunk ``index`` of the record with ``key``: a UUIDv5 of (key, index), so a
    re-run overwrites the same chunk points."""
    if isinstance(key, (bytes, bytearray)):
        key = as_text(key, "id")
    return _uuid5_text(spec.id_namespace, spec.collection, f"{key}#{index}")


def id_text(point_id: Any) -> str:
    """An id as Qdrant returns it, as text: integers as digits, UUIDs in canonical form."""
    if isinstance(point_id, int):
        return str(point_id)
    try:
        return str(uuid.UUID(str(point_id)))
    except ValueError:
        return str(point_id)


def jsonable(value: Any, field: str) -> Any:
    """A payload value Qdrant can store; dates become ISO strings, bytes are refused."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecord(f"payload field {field!r} holds a non-finite float {value!r}")
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, field) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return jsonable(float(value), field)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item(), field)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return jsonable(value.tolist(), field)
    raise InvalidRecord(
        f"payload field {field!r} holds {type(value).__name__}, which Qdrant cannot store; "
        f"add it to payload.exclude"
    )


#: (vector name, input kind, text or image value, model, options or None): one vector's input
VectorInput = tuple[Any, InputKind, Any, str, Mapping[str, Any] | None]


class MappedRecord(NamedTuple):
    """What inference works on: a point's id, its inputs to embed, and its payload.

    Made from a record by ``RecordMapper`` (each point is then built once, with its vectors:
    no ``Document`` and no intermediate point per record), or from a ``PointStruct`` whose
    vectors are inference objects (``point`` keeps it: its plain vectors stay, and a dead
    letter carries it as it came). An input named ``None`` is a point's unnamed vector.
    """

    id: int | str | uuid.UUID
    inputs: list[VectorInput]
    payload: dict[str, Any] | None
    point: models.PointStruct | None = None
    #: vectors made of several inputs (the chunks of a text): a multivector, in input order
    chunked: frozenset[str] = frozenset()

    def to_point(self) -> models.PointStruct:
        """The point with inference objects, as ``RecordsToPoints`` emits it."""
        if self.point is not None:
            return self.point
        vectors: dict[str, Any] = {}
        for name, kind, value, model, options in self.inputs:
            copied = dict(options) if options else None  # each point owns its options
            if name in self.chunked:  # the whole text; chunking happens again on resolve
                continue
            if kind is InputKind.TEXT:
                # Fields are already checked (str text, spec-validated model and options):
                # skipping pydantic's validation halves the cost of mapping a record.
                vectors[name] = construct(models.Document, text=value, model=model, options=copied)
            else:
                vectors[name] = models.Image(image=value, model=model, options=copied)
        return construct(models.PointStruct, id=self.id, vector=vectors, payload=self.payload)


class RecordMapper:
    """Maps records to points for one spec; construct once per worker.

    ``chunkers`` (by vector name, and ``CHUNKS`` for chunk points: ``chunkers.build``) split
    the texts of chunked vectors; a spec without chunking needs none.
    """

    def __init__(self, spec: PointsSpec, chunkers: Mapping[str, Any] | None = None) -> None:
        self._spec = spec
        self.chunkers = dict(chunkers or {})
        #: records whose chunks were cut at ``max_chunks`` (the caller reports it)
        self.truncated = 0
        self._id = Template.parse(spec.id)
        self._vectors = [
            (name, vector, Template.parse(vector.template)) for name, vector in spec.vectors.items()
        ]
        # per-vector facts read once here rather than off the pydantic spec for every record
        self._plan = [
            (name, vector.model, dict(vector.options), vector.input_kind is InputKind.TEXT, t)
            for name, vector, t in self._vectors
            if CHUNK_FIELD not in t.fields  # per-chunk vectors: ``chunk_points``
        ]
        self._chunking = {n: v.chunking for n, v in spec.vectors.items() if v.chunking}
        self._include = spec.payload.include
        self._exclude = frozenset(spec.payload.exclude)
        templates = [self._id, *(v[2] for v in self._vectors)]
        if spec.chunks is not None:
            templates.append(Template.parse(spec.chunks.text))
        used = {f.split(".", 1)[0] for t in templates for f in t.fields} - {CHUNK_FIELD}
        payload = spec.payload
        #: top-level fields a point depends on; ``None`` with ``excluded``: all but those
        self.shaping_fields: frozenset[str] | None = (
            frozenset(used | set(payload.include)) if payload.include is not None else None
        )
        self.unshaping_fields = frozenset(set(payload.exclude) - used)

    def point_id(self, record: Any) -> int | str:
        """The record's point id; raises ``InvalidRecord`` for a non-mapping or a bad key."""
        if not isinstance(record, Mapping):
            raise InvalidRecord(f"a record must be a mapping, got {type(record).__name__}")
        key = self._id.render_raw(record)
        return point_id(key, collection=self._spec.collection, namespace=self._spec.id_namespace)

    def shaping_part(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of a record that its point depends on (payload, templates, id)."""
        if self.shaping_fields is not None:
            return {k: record[k] for k in self.shaping_fields if k in record}
        return {k: v for k, v in record.items() if k not in self.unshaping_fields}

    def map(self, record: Any) -> MappedRecord:
        """The record's id, vector inputs and payload (a chunked vector: one input per chunk);
        raises ``InvalidRecord`` naming the field and the problem. Per-chunk vectors of chunk
        points are not here: ``chunk_points.ChunkPoints``."""
        pid = self.point_id(record)
        inputs: list[VectorInput] = []
        texts: dict[str, str] = {}  # vectors often share a template: render it once
        for name, model, options, is_text, template in self._plan:
            if not is_text:
                image = self._image_value(name, template, record)
                inputs.append((name, InputKind.IMAGE, image, model, options or None))
                continue
            text = texts.get(template.source)
            if text is None:
                text = texts[template.source] = template.render_text(record)
            if not text.strip():
                raise InvalidRecord(
                    f"vector {name!r}: text from {template.source!r} is empty or whitespace"
                )
            if name in self._chunking:
                for chunk in self.split(name, text):
                    inputs.append((name, InputKind.TEXT, chunk.text, model, options or None))
            else:
                inputs.append((name, InputKind.TEXT, text, model, options or None))
        chunked = frozenset(self._chunking)
        return MappedRecord(pid, inputs, self._payload(record), None, chunked)

    def split(self, key: str, text: str) -> list[Any]:
        """``text`` in chunks by the chunker of ``key`` (a vector, or ``CHUNKS``), cut at
        ``max_chunks`` or refused, as its spec says; raises ``InvalidRecord``."""
        chunking = self._chunking.get(key) or self._spec.chunks
        chunker = self.chunkers.get(key)
        if chunker is None or chunking is None:
            raise InvalidRecord(f"no chunker for {key!r}: build them with chunkers.build(spec)")
        chunks = chunker.split(text)
        if not chunks:
            raise InvalidRecord(f"{key}: the text yields no chunk")
        limit = chunking.max_chunks
        if limit is not None and len(chunks) > limit:
            if chunking.over_max == "dead_letter":
                raise InvalidRecord(
                    f"{key}: the text makes {len(chunks)} chunks, over max_chunks {limit}"
                )
            self.truncated += 1
            chunks = chunks[:limit]
        return chunks

    def to_point(self, record: Any) -> models.PointStruct:
        """Raises ``InvalidRecord`` naming the field and the problem."""
        return self.map(record).to_point()

    @property
    def spec(self) -> PointsSpec:
        return self._spec

    def key(self, record: Any) -> Any:
        """The record's raw key (what the id template renders)."""
        return self._id.render_raw(record)

    def payload(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return self._payload(record)

    @staticmethod
    def _image_value(name: str, template: Template, record: Mapping[str, Any]) -> Any:
        value = template.render_raw(record)
        if isinstance(value, (bytes, bytearray, memoryview)):
            if not value:
                raise InvalidRecord(f"vector {name!r}: image bytes are empty")
            return bytes(value)
        if not isinstance(value, str):
            raise InvalidRecord(
                f"vector {name!r}: image field must be a URL, path, base64 string or bytes, "
                f"got {type(value).__name__}"
            )
        if not value.strip():
            raise InvalidRecord(f"vector {name!r}: image from {template.source!r} is empty")
        return value

    def _payload(self, record: Mapping[str, Any]) -> dict[str, Any]:
        include = self._include
        excluded = self._exclude
        out: dict[str, Any] = {}
        for key in include if include is not None else record:
            if key in excluded or key not in record:
                continue
            value = record[key]
            if isinstance(value, (bytes, bytearray)) and include is None:
                # Raw bytes (an image, say) cannot be payload; keep them out unless asked for.
                continue
            # plain JSON scalars, the common case, are stored as they are
            out[str(key)] = value if type(value) in _SCALARS else jsonable(value, str(key))
        return out
