"""Inference objects as requests: the dedup key, the call group, and the vector shapes back.

Two objects with the same key (kind, model, normalised input, options without ``mrl``) are
computed once; objects in the same call group share one model call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from typing import Any

import numpy as np
from qdrant_client import models

from qdrant_beam.io.errors import InvalidImage, InvalidRecord, PermanentError
from qdrant_beam.transforms.backends.registry import (
    InputKind,
    ModelInfo,
    VectorKind,
    default_input_kind,
)
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.options import canonical_json, split_options

__all__ = [
    "INFERENCE_TYPES",
    "CallGroup",
    "Request",
    "RequestParser",
    "mrl_truncate",
    "request_for",
    "to_qdrant_vector",
    "to_request",
]

INFERENCE_TYPES = (models.Document, models.Image, models.InferenceObject)

#: Image strings longer than this are keyed by their digest, to keep keys small.
_INLINE_KEY_CHARS = 512


@dataclasses.dataclass(frozen=True)
class CallGroup:
    """Requests that one model call can serve together."""

    model: str
    input_kind: InputKind
    load: tuple[tuple[str, Any], ...]
    is_query: bool
    #: fingerprint of the API key an object carries: objects of different accounts are
    #: sent separately, but share a dedup key (the vectors are the same)
    account: str = ""


@dataclasses.dataclass(slots=True, eq=False)
class Request:
    """One inference object, parsed. Treat as immutable: it is not ``frozen`` because a
    frozen dataclass's ``__init__`` costs 1.3 us against 0.2 us, once per object."""

    key: tuple[Any, ...]
    group: CallGroup
    info: ModelInfo
    value: Any
    mrl: int | None
    size: int
    output_dim: int | None = None
    secret: str | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def expected_dim(self) -> int | None:
        """The size the model must return (before ``mrl``); None when unknown."""
        return self.output_dim or self.info.dim


def _normalise_text(text: Any) -> str:
    """The key form of a text (NFC, stripped); the model still sees the text as given."""
    if not isinstance(text, str):
        raise InvalidRecord(f"document text must be a string, got {type(text).__name__}")
    normal = unicodedata.normalize("NFC", text).strip()
    if not normal:
        raise InvalidRecord("document text is empty or whitespace")
    return normal


def _image_key(value: Any) -> tuple[Any, int]:
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if not data:
            raise InvalidImage("image bytes are empty")
        return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidImage("image string is empty")
        if len(text) > _INLINE_KEY_CHARS:
            return "sha256:" + hashlib.sha256(text.encode()).hexdigest(), len(text)
        return text, len(text)
    raise InvalidImage(
        f"image input must be a URL, path, base64 string or bytes, got {type(value).__name__}"
    )


#: (model, kind, options) -> what the options and model mean; one entry per distinct setting
_Described = tuple[ModelInfo, Any, CallGroup, str]


class RequestParser:
    """``to_request`` with the per-setting work (model lookup, option parsing, key parts) done
    once per distinct (model, input kind, options) instead of once per object."""

    def __init__(self, catalog: ModelCatalog, max_entries: int = 1024) -> None:
        self._catalog = catalog
        self._memo: dict[Any, _Described] = {}
        self._max = max_entries

    def __call__(self, obj: Any) -> Request:
        return to_request(obj, self._catalog, self)

    def request(self, kind: InputKind, raw: Any, model: str, options: Any) -> Request:
        """The request for an input given as its parts (no inference object built)."""
        return request_for(kind, raw, model, options, self._catalog, self)

    def described(self, model: str, kind: InputKind, options: Any) -> _Described:
        try:
            memo_key: Any = (
                model,
                kind,
                tuple(sorted(options.items())) if options else None,
            )
            hit = self._memo.get(memo_key)
        except TypeError:  # unhashable option values: no memo
            memo_key, hit = None, None
        if hit is not None:
            return hit
        described = _describe(self._catalog, model, kind, options)
        if memo_key is not None and len(self._memo) < self._max:
            self._memo[memo_key] = described
        return described


def _describe(catalog: ModelCatalog, model: str, kind: InputKind, options: Any) -> _Described:
    info = catalog.describe(model, kind)
    split = split_options(info, options)
    group = CallGroup(info.name, kind, split.load, split.is_query, key_fingerprint(split.secret))
    return info, split, group, canonical_json(split.load)


def to_request(obj: Any, catalog: ModelCatalog, parser: RequestParser | None = None) -> Request:
    """Validate one inference object; raises ``PermanentError`` (including ``SpecError``)."""
    if isinstance(obj, models.Document):
        kind, raw = InputKind.TEXT, obj.text
    elif isinstance(obj, models.Image):
        kind, raw = InputKind.IMAGE, obj.image
    elif isinstance(obj, models.InferenceObject):
        raw = obj.object
        kind = default_input_kind(obj.model, prefer_image=isinstance(raw, (bytes, bytearray)))
    else:
        raise InvalidRecord(f"not an inference object: {type(obj).__name__}")
    options = obj.options
    if isinstance(options, models.Bm25Config):
        options = options.model_dump(exclude_none=True)
    return request_for(kind, raw, obj.model, options, catalog, parser)


def request_for(
    kind: InputKind,
    raw: Any,
    model: str,
    options: Any,
    catalog: ModelCatalog,
    parser: RequestParser | None = None,
) -> Request:
    """``to_request`` for an input given as its parts; raises ``PermanentError``."""
    if parser is not None:
        info, split, group, load_json = parser.described(model, kind, options)
    else:
        info, split, group, load_json = _describe(catalog, model, kind, options)
    if kind is InputKind.TEXT:
        ident = _normalise_text(raw)
        value, size = raw, len(ident)
    else:
        value = raw
        ident, size = _image_key(raw)
    key = (kind.value, info.name.lower(), ident, load_json, split.is_query)
    return Request(key, group, info, value, split.mrl, size, split.output_dim, split.secret)


def key_fingerprint(key: str | None) -> str:
    """A short one-way name for an API key: tells accounts apart without holding the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else ""


def mrl_truncate(vector: np.ndarray, dims: int) -> np.ndarray:
    """First ``dims`` dimensions, L2-normalised again (Matryoshka truncation)."""
    head = np.asarray(vector[:dims], dtype=np.float32)
    norm = float(np.linalg.norm(head))
    return head / norm if norm > 0 else head


def to_qdrant_vector(info: ModelInfo, raw: Any, mrl: int | None) -> Any:
    """The vector in the shape ``qdrant_client.models`` uses for ``info``'s kind."""
    if info.vector_kind is VectorKind.SPARSE:
        indices, values = raw
        return models.SparseVector(indices=indices.tolist(), values=values.tolist())
    if info.vector_kind is VectorKind.MULTIVECTOR:
        return np.asarray(raw).tolist()
    vector = np.asarray(raw)
    if mrl is not None:
        if mrl > vector.shape[0]:
            raise PermanentError(
                f"mrl={mrl} exceeds the {vector.shape[0]} dimensions model {info.name!r} returned"
            )
        vector = mrl_truncate(vector, mrl)
    return vector.tolist()
