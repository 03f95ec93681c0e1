"""What the four embedding-provider fakes share: model sizes, limits, token counts, the vectors
they answer with, the parsed request, and the ``Api`` base class of a flavour.

Vectors.  ``expected_vector`` draws a unit vector of the model's full size from a generator
seeded with sha256(flavor, model, identity), then, when ``dimensions`` / ``output_dimension`` is
given, keeps the first ``dim`` values and renormalises them (Matryoshka style).  The values are
float32: the JSON floats and the base64 bytes (little-endian float32) carry the same numbers.  An
input's identity is the text as sent, the image string as sent (data URL, URL or bare base64), or
``"tokens:1,2,3"`` for an OpenAI token array; for a Cohere ``inputs`` item with one part it is
that part's text or image URL, otherwise the compact JSON of its ``content`` list.  The vector does
not depend on ``input_type`` / ``task``.  Jina ``normalized: false`` scales the vector by a
deterministic factor in [1, 10] and truncates without renormalising (``normalized=False``).  Full
sizes come from ``MODEL_DIMS`` (OpenRouter strips the ``vendor/`` prefix and uses OpenAI's table),
then the server's ``dims={model: dim}``, else its ``default_dim``.

Token counts use ``count_tokens``, a documented approximation, not a real tokenizer.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_LIMITS",
    "MODEL_DIMS",
    "Api",
    "ApiError",
    "Input",
    "Parsed",
    "count_tokens",
    "expected_vector",
    "model_dim",
    "vector_of",
]

#: Full embedding sizes of the models each provider documents (OpenRouter uses OpenAI's).
MODEL_DIMS: dict[str, dict[str, int]] = {
    "openai": {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
    },
    "cohere": {
        "embed-english-v3.0": 1024,
        "embed-multilingual-v3.0": 1024,
        "embed-english-light-v3.0": 384,
        "embed-multilingual-light-v3.0": 384,
        "embed-v4.0": 1536,
    },
    "jinaai": {
        "jina-embeddings-v3": 1024,
        "jina-clip-v2": 1024,
        "jina-clip-v1": 768,
        "jina-embeddings-v2-base-en": 768,
        "jina-embeddings-v4": 2048,
    },
}

#: Per-flavor limits; ``ProviderServer(limits={...})`` overrides single entries.  Cohere's
#: per-input token limit depends on the model (``None`` here: 512 for v3, 128k for v4+).
DEFAULT_LIMITS: dict[str, dict[str, int | None]] = {
    "openai": {"max_inputs": 2048, "max_input_tokens": 8192, "max_request_tokens": 300_000},
    "openrouter": {"max_inputs": 2048, "max_input_tokens": 8192, "max_request_tokens": 300_000},
    "cohere": {
        "max_inputs": 96,
        "max_input_tokens": None,
        "max_images_v3": 1,
        "max_image_bytes_v3": 5 * 1024 * 1024,
        "max_total_image_bytes": 20 * 1024 * 1024,
    },
    "jinaai": {"max_inputs": 2048, "max_input_tokens": 8192},
}


def count_tokens(text: str) -> int:
    """Token count used for every limit and every ``usage`` figure: the larger of the number of
    whitespace-separated words and ``ceil(len(text) / 4)``.  Crude on purpose (no tokenizer in
    the test environment) but never below the word count, so limits trip predictably."""
    return max(len(text.split()), math.ceil(len(text) / 4))


def model_dim(flavor: str, model: str, default_dim: int = 64) -> int:
    """The full vector size of ``model`` from ``MODEL_DIMS``, or ``default_dim``."""
    if flavor == "openrouter":
        flavor, model = "openai", model.split("/", 1)[-1]
    return MODEL_DIMS.get(flavor, {}).get(model, default_dim)


@functools.lru_cache(maxsize=1024)
def _unit(digest: bytes, full_dim: int) -> np.ndarray:
    # SHAKE-256 stretches the digest into full_dim uniform values: deterministic, and about 6x
    # cheaper than seeding a numpy Generator per input, which made this emulator's own CPU a
    # large share of the remote benchmark on a 2-core machine.
    raw = hashlib.shake_256(digest).digest(2 * full_dim)
    v = np.frombuffer(raw, dtype="<u2").astype(np.float64) - 32767.5
    v /= np.linalg.norm(v)
    v.flags.writeable = False
    return v


def vector_of(
    flavor: str, model: str, identity: str, dim: int, full_dim: int, normalized: bool
) -> np.ndarray:
    key = "\x1f".join((flavor, model, identity)).encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(key).digest()
    v = _unit(digest, full_dim)[:dim]
    if not normalized:
        v = v * (1.0 + 9.0 * digest[16] / 255.0)
    elif dim != full_dim:
        v = v / np.linalg.norm(v)
    return v.astype(np.float32)


def expected_vector(
    flavor: str,
    model: str,
    input_identity: str,
    dim: int | None = None,
    full_dim: int | None = None,
    *,
    normalized: bool = True,
) -> list[float]:
    """The vector the server answers for one input (see the module docstring).

    ``full_dim`` defaults to ``model_dim(flavor, model)`` (without a server's ``dims``
    overrides: use ``ProviderServer.expected`` for those); ``dim`` defaults to ``full_dim``.
    """
    full = model_dim(flavor, model) if full_dim is None else full_dim
    d = full if dim is None else dim
    if not 1 <= d <= full:
        raise ValueError(f"dim must be in 1..{full}, got {d}")
    return vector_of(flavor, model, input_identity, d, full, normalized).tolist()


@dataclass
class Input:
    identity: str
    kind: str  # "text", "tokens", "image", "mixed"
    tokens: int = 0
    text: str | None = None  # for poison checks; every text part of a mixed input joined
    image: dict[str, Any] | None = None  # Cohere's {width, height, format, bit_depth}


@dataclass
class Parsed:
    model: str
    inputs: list[Input]
    dims: int | None = None
    formats: tuple[str, ...] = ("float",)
    normalized: bool = True
    tokens: int = 0
    images: int = 0
    texts: list[str] = field(default_factory=list)


class ApiError(Exception):
    """A provider-shaped error answer."""

    def __init__(
        self, status: int, body: Any, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.message = message
        self.headers = list(headers)
        self.fault: str | None = None  # "poison" when the input was poisoned on purpose

    def poisoned(self) -> ApiError:
        self.fault = "poison"
        return self


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def type_name(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    names.update({list: "an array", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


def decode_image(data: bytes) -> dict[str, Any] | None:
    """Width, height, format and bit depth of an encoded image (header only), or None."""
    from PIL import Image, UnidentifiedImageError  # only image requests pay for the import

    try:
        with Image.open(io.BytesIO(data)) as img:
            bands = len(img.getbands())
            depth = {"1": 1, "I;16": 16, "I": 32, "F": 32}.get(img.mode, 8 * bands)
            fmt = (img.format or "").lower()
            return {"width": img.width, "height": img.height, "format": fmt, "bit_depth": depth}
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def split_data_url(value: str) -> tuple[str, str] | None:
    """``(mime, base64 payload)`` of a ``data:<mime>;base64,<payload>`` URL, else None."""
    if not value.startswith("data:"):
        return None
    header, sep, payload = value[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header.split(";", 1)[0].lower(), payload


def b64decode(payload: str) -> bytes | None:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


class Api:
    """One provider's routes, validation, answers and error bodies."""

    flavor = ""
    base_path = ""
    endpoint_path = ""
    fields: frozenset[str] = frozenset()
    variant_fields: tuple[str, ...] = ()

    def __init__(self, server: Any) -> None:
        """``server``: the ``ProviderServer`` (its limits, ``poison``, sizes and key echo)."""
        self.server = server

    def error(
        self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()
    ) -> ApiError:
        raise NotImplementedError

    def auth_error(self, presented: str | None) -> ApiError:
        raise NotImplementedError

    def fault_error(self, status: int, model: str | None) -> ApiError:
        raise NotImplementedError

    def route_error(self, method: str, path: str, *, known_path: bool) -> ApiError:
        return self.error(405 if known_path else 404, f"Invalid URL ({method} {path})")

    def json_error(self, detail: str) -> ApiError:
        return self.error(400, f"Could not parse the JSON body of your request: {detail}")

    def parse(self, doc: Any, found: list[Input]) -> Parsed:
        raise NotImplementedError

    def render(self, req: Parsed, vectors: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def variant(self, doc: Any) -> str:
        """The request fields that change an input's vector, for the resend key."""
        if not isinstance(doc, dict):
            return ""
        return json.dumps([doc.get(name) for name in self.variant_fields], default=str)

    # shared helpers

    def _limit(self, name: str) -> int | None:
        return self.server._limits.get(name)

    def _check_poison(self, inputs: Sequence[Input]) -> int | None:
        poison = self.server.poison
        if not poison:
            return None
        for i, inp in enumerate(inputs):
            if inp.text is not None and poison in inp.text:
                return i
        return None


def encode(vectors: np.ndarray, fmt: str) -> list[Any]:
    if fmt == "base64":
        le = vectors.astype("<f4", copy=False)
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in le]
    rows: list[Any] = vectors.tolist()
    return rows
