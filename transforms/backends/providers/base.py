"""What every remote embedding API is to the client: one ``Provider`` class per API. Pure: no I/O.

A provider owns everything that differs between APIs: its routing prefix, endpoint, limits,
the names of its key (option and environment variable), which options it passes through and
how ``input_type`` maps, how images are sent, the request body, and the response parsing.
``RemoteClient`` treats them all alike; nothing outside a provider's own class asks which
provider it is.

The client asks for base64 float32 vectors where the API offers it: decoding them is far
cheaper than parsing JSON floats, and the values are the same.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from qdrant_beam.io.errors import PermanentError, UnsupportedOption
from qdrant_beam.transforms.images import ImageReader, decode_image

__all__ = ["Provider", "RemoteInput", "estimate_tokens"]

#: MIME types of the image formats sent as data URLs.
_IMAGE_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclasses.dataclass(frozen=True)
class RemoteInput:
    """One input as the provider receives it: text, an image URL, or an image data URL."""

    kind: str  # "text" | "image"
    value: str
    tokens: int = 0


def estimate_tokens(text: str) -> int:
    """An upper-bound-ish token estimate (BPE averages ~4 bytes per token in English).

    Used only to keep requests under a provider's per-request token budget; a provider that
    still refuses a request as too large gets it split in two.
    """
    return max(1, math.ceil(len(text.encode("utf-8")) / 3))


def decode_vector(value: Any) -> np.ndarray:
    """A vector from JSON floats or base64 little-endian float32 (a read-only view)."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4")
    return np.asarray(value, dtype=np.float32)


def positive_int_option(options: Mapping[str, Any], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnsupportedOption(f"option {key} must be a positive integer, got {value!r}")
    return value


class Provider(abc.ABC):
    """One remote embedding API. Subclasses set the class attributes and build/parse."""

    #: the routing prefix of model names (``openai/text-embedding-3-small``)
    name: ClassVar[str]
    default_base_url: ClassVar[str]
    #: the embeddings endpoint, relative to the base URL
    path: ClassVar[str]
    #: where the API key comes from: the environment variable and the inference-object option
    env_key: ClassVar[str]
    option_key: ClassVar[str]
    max_inputs: ClassVar[int]
    max_request_tokens: ClassVar[int | None] = None
    #: tokens one input may have (the default size of a chunk for this provider)
    max_input_tokens: ClassVar[int] = 512
    max_images: ClassVar[int] = 0
    #: options passed through to the request, by option name
    call_options: ClassVar[frozenset[str]]
    #: the option that sets the output size, if any
    dim_option: ClassVar[str | None] = None
    #: known model sizes (without the provider prefix), lower-case
    dims: ClassVar[Mapping[str, int]] = {}
    #: models that take images
    image_models: ClassVar[frozenset[str]] = frozenset()
    #: ``input_type`` values passed through as they are (besides query/passage)
    passthrough_input_types: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- models ---------------------------------------------------------------------------
    def model_id(self, model: str) -> str:
        """The model name the API expects: ours without the provider prefix."""
        return model.split("/", 1)[1] if "/" in model else model

    def known_dim(self, model: str) -> int | None:
        key = self.model_id(model).lower()
        if key in self.dims:
            return self.dims[key]
        return self.dims.get(key.rsplit("/", 1)[-1])

    def takes_images(self, model: str) -> bool:
        return self.model_id(model).lower() in self.image_models

    # -- options --------------------------------------------------------------------------
    def output_dim(self, options: Mapping[str, Any]) -> int | None:
        return positive_int_option(options, self.dim_option) if self.dim_option else None

    def encoding_options(self, encoding: str) -> dict[str, Any]:
        """Options that ask for ``encoding`` (``float`` | ``base64``) vectors; the API's own
        name for it, or nothing when the API has one encoding."""
        return {}

    # -- requests -------------------------------------------------------------------------
    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def image_input(self, value: Any, reader: ImageReader) -> RemoteInput:
        """An image as this API takes it: by default a data URL of the checked bytes."""
        data = reader.read(value)
        image = decode_image(data, reader.limits)
        mime = _IMAGE_MIME.get(image.format or "", "image/png")
        return RemoteInput("image", f"data:{mime};base64,{base64.b64encode(data).decode()}")

    @abc.abstractmethod
    def build(
        self,
        model: str,
        inputs: Sequence[RemoteInput],
        options: Mapping[str, Any],
        is_query: bool,
    ) -> dict[str, Any]:
        """The JSON body for one request."""

    # -- responses ------------------------------------------------------------------------
    @abc.abstractmethod
    def parse(self, body: Any, expected: int) -> tuple[list[np.ndarray], int]:
        """The vectors, in input order, and the tokens the provider reports it billed."""

    def check_count(self, vectors: list[np.ndarray], expected: int) -> list[np.ndarray]:
        if len(vectors) != expected:
            raise PermanentError(
                f"{self.name} returned {len(vectors)} embeddings for {expected} inputs"
            )
        return vectors

    def error_message(self, body: Any, fallback: str) -> str:
        """The provider's own error text, from its error format."""
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):
                return str(error["message"])
            if isinstance(error, str):
                return error
            for key in ("message", "detail"):
                value = body.get(key)
                if isinstance(value, str):
                    return value
                if isinstance(value, list) and value:  # pydantic-style validation errors
                    first = value[0]
                    return str(first.get("msg", first)) if isinstance(first, dict) else str(first)
        return fallback
