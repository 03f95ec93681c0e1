"""The four remote embedding APIs: request bodies, response parsing, limits. Pure: no I/O.

Each provider is a small description plus two functions, ``build`` and ``parse``, written
from the provider's public API reference:

* OpenAI ``POST /v1/embeddings``: ``input`` list, ``model``, ``dimensions``,
  ``encoding_format``; at most 2,048 inputs and 300,000 tokens per request.
* OpenRouter ``POST /api/v1/embeddings``: the OpenAI format; model names carry their own
  vendor prefix (``openrouter/openai/text-embedding-3-small`` sends
  ``openai/text-embedding-3-small``).
* Cohere Embed v2 ``POST /v2/embed``: ``texts`` (at most 96) or ``images`` (data URLs, one
  per call), ``input_type``, ``embedding_types``, ``output_dimension``, ``truncate``.
* Jina ``POST /v1/embeddings``: ``input`` strings or ``{text}``/``{image}`` objects,
  ``task``, ``dimensions``, ``late_chunking``, ``normalized``, ``embedding_type``.

The client asks for base64 float32 vectors where the API offers it (``encoding_format`` /
``embedding_type``): decoding them is far cheaper than parsing JSON floats, and the values are
the same. Builders default to floats, which every OpenAI-compatible server understands.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from qdrant_beam.transforms.errors import PermanentError, UnsupportedOption

__all__ = [
    "PROVIDERS",
    "Provider",
    "ProviderConfig",
    "RemoteInput",
    "estimate_tokens",
    "provider_for",
]


class ProviderConfig(BaseModel):
    """How to reach one provider; config only, never a secret.

    The API key is read on the worker: from the inference object's ``<provider>-api-key``
    option if it has one, else from the environment variable ``api_key_env`` (by default the
    provider's own, e.g. ``OPENAI_API_KEY``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(
        None, description="Override the API base URL (gateways, vLLM, TEI, Ollama, Azure)."
    )
    api_key_env: str | None = Field(
        None, description="Environment variable holding the key on the workers."
    )
    timeout_s: float = Field(60.0, gt=0, description="Timeout of one request.")
    max_concurrency: int = Field(8, ge=1, description="Most requests in flight per worker.")
    initial_concurrency: int = Field(4, ge=1, description="Requests in flight at the start.")
    max_inputs: int | None = Field(
        None, ge=1, description="Inputs per request; the provider's limit when unset."
    )
    max_request_tokens: int | None = Field(
        None, ge=1, description="Estimated tokens per request; the provider's limit when unset."
    )
    encoding: Literal["float", "base64"] | None = Field(
        None,
        description="How vectors come back; base64 on the provider's own API, float on an "
        "overridden base URL (not every compatible server speaks base64).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra non-secret headers (e.g. HTTP-Referer)."
    )
    max_attempts: int = Field(8, ge=1, description="Tries per request, the first included.")
    initial_backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(20.0, ge=0)
    max_retry_after_s: float = Field(60.0, ge=0, description="Cap of Retry-After waits.")
    deadline_s: float = Field(600.0, ge=0, description="No retry starts later than this.")


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


def _decode_base64(value: str) -> np.ndarray:
    # read-only view of the decoded bytes: nothing writes to a vector in place
    return np.frombuffer(base64.b64decode(value), dtype="<f4")


def _vector(value: Any) -> np.ndarray:
    if isinstance(value, str):
        return _decode_base64(value)
    return np.asarray(value, dtype=np.float32)


def _int_option(options: Mapping[str, Any], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnsupportedOption(f"option {key} must be a positive integer, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Provider:
    """What differs between providers; the HTTP client treats them all alike."""

    name: str
    default_base_url: str
    path: str
    env_key: str
    option_key: str
    max_inputs: int
    max_request_tokens: int | None
    max_images: int
    #: options passed through to the request, by option name
    call_options: frozenset[str]
    #: the option that sets the output size, if any
    dim_option: str | None
    #: known model sizes (without the provider prefix), lower-case
    dims: Mapping[str, int]
    #: models that take images
    image_models: frozenset[str] = frozenset()

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

    def output_dim(self, options: Mapping[str, Any]) -> int | None:
        return _int_option(options, self.dim_option) if self.dim_option else None

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    # -- request ------------------------------------------------------------------------
    def build(
        self,
        model: str,
        inputs: Sequence[RemoteInput],
        options: Mapping[str, Any],
        is_query: bool,
    ) -> dict[str, Any]:
        """The JSON body for one request."""
        return _BUILDERS[self.name](self, model, inputs, options, is_query)

    # -- response -----------------------------------------------------------------------
    def parse(self, body: Any, expected: int) -> tuple[list[np.ndarray], int]:
        """The vectors, in input order, and the tokens the provider reports it billed."""
        if not isinstance(body, dict):
            raise PermanentError(f"{self.name} answered with a non-object body")
        if self.name == "cohere":
            embeddings = body.get("embeddings")
            if not isinstance(embeddings, dict):
                raise PermanentError("cohere response has no `embeddings` object")
            raw = embeddings.get("base64") or embeddings.get("float")
            if not isinstance(raw, list):
                raise PermanentError("cohere response has no float or base64 embeddings")
            vectors = [_vector(v) for v in raw]
            billed = body.get("meta", {}).get("billed_units", {}) or {}
            tokens = int(billed.get("input_tokens", 0) or 0) + int(
                billed.get("image_tokens", 0) or 0
            )
        else:
            data = body.get("data")
            if not isinstance(data, list):
                raise PermanentError(f"{self.name} response has no `data` list")
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            vectors = [_vector(item["embedding"]) for item in ordered]
            usage = body.get("usage") or {}
            tokens = int(usage.get("total_tokens", usage.get("prompt_tokens", 0)) or 0)
        if len(vectors) != expected:
            raise PermanentError(
                f"{self.name} returned {len(vectors)} embeddings for {expected} inputs"
            )
        return vectors, tokens

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


def _openai(
    provider: Provider,
    model: str,
    inputs: Sequence[RemoteInput],
    options: Mapping[str, Any],
    is_query: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": provider.model_id(model),
        "input": [item.value for item in inputs],
        "encoding_format": options.get("encoding_format", "float"),
    }
    for key in ("dimensions", "user", "provider"):
        if key in options:
            body[key] = options[key]
    return body


_COHERE_QUERY, _COHERE_DOC = "search_query", "search_document"


def _cohere(
    provider: Provider,
    model: str,
    inputs: Sequence[RemoteInput],
    options: Mapping[str, Any],
    is_query: bool,
) -> dict[str, Any]:
    images = inputs[0].kind == "image"
    input_type = options.get("input_type") or (
        "image" if images else (_COHERE_QUERY if is_query else _COHERE_DOC)
    )
    body: dict[str, Any] = {
        "model": provider.model_id(model),
        "input_type": input_type,
        "embedding_types": ["float"],
    }
    body["images" if images else "texts"] = [item.value for item in inputs]
    for key in ("output_dimension", "truncate", "max_tokens"):
        if key in options:
            body[key] = options[key]
    return body


def _jina(
    provider: Provider,
    model: str,
    inputs: Sequence[RemoteInput],
    options: Mapping[str, Any],
    is_query: bool,
) -> dict[str, Any]:
    model_id = provider.model_id(model)
    if provider.takes_images(model):
        payload: list[Any] = [{item.kind: item.value} for item in inputs]
    else:
        payload = [item.value for item in inputs]
    body: dict[str, Any] = {
        "model": model_id,
        "input": payload,
        "embedding_type": options.get("embedding_type", "float"),
    }
    task = options.get("task")
    if task is None and model_id.lower() == "jina-embeddings-v3":
        task = "retrieval.query" if is_query else "retrieval.passage"
    if task is not None:
        body["task"] = task
    for key in ("dimensions", "late_chunking", "normalized", "truncate"):
        if key in options:
            body[key] = options[key]
    return body


_BUILDERS = {"openai": _openai, "openrouter": _openai, "cohere": _cohere, "jinaai": _jina}

_OPENAI_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}

PROVIDERS: dict[str, Provider] = {
    "openai": Provider(
        name="openai",
        default_base_url="https://api.openai.com/v1",
        path="/embeddings",
        env_key="OPENAI_API_KEY",
        option_key="openai-api-key",
        max_inputs=2048,
        max_request_tokens=300_000,
        max_images=0,
        call_options=frozenset({"dimensions", "user", "encoding_format"}),
        dim_option="dimensions",
        dims=_OPENAI_DIMS,
    ),
    "openrouter": Provider(
        name="openrouter",
        default_base_url="https://openrouter.ai/api/v1",
        path="/embeddings",
        env_key="OPENROUTER_API_KEY",
        option_key="openrouter-api-key",
        max_inputs=2048,
        max_request_tokens=300_000,
        max_images=0,
        call_options=frozenset({"dimensions", "user", "encoding_format", "provider"}),
        dim_option="dimensions",
        dims=_OPENAI_DIMS,
    ),
    "cohere": Provider(
        name="cohere",
        default_base_url="https://api.cohere.com",
        path="/v2/embed",
        env_key="COHERE_API_KEY",
        option_key="cohere-api-key",
        max_inputs=96,
        max_request_tokens=None,
        max_images=1,
        call_options=frozenset({"output_dimension", "truncate", "max_tokens"}),
        dim_option="output_dimension",
        dims={
            "embed-english-v3.0": 1024,
            "embed-multilingual-v3.0": 1024,
            "embed-english-light-v3.0": 384,
            "embed-multilingual-light-v3.0": 384,
            "embed-v4.0": 1536,
        },
        image_models=frozenset(
            {
                "embed-english-v3.0",
                "embed-multilingual-v3.0",
                "embed-english-light-v3.0",
                "embed-multilingual-light-v3.0",
                "embed-v4.0",
            }
        ),
    ),
    "jinaai": Provider(
        name="jinaai",
        default_base_url="https://api.jina.ai/v1",
        path="/embeddings",
        env_key="JINA_API_KEY",
        option_key="jina-api-key",
        max_inputs=2048,
        max_request_tokens=None,
        max_images=2048,
        call_options=frozenset(
            {"task", "dimensions", "late_chunking", "normalized", "embedding_type", "truncate"}
        ),
        dim_option="dimensions",
        dims={
            "jina-embeddings-v3": 1024,
            "jina-embeddings-v4": 2048,
            "jina-clip-v2": 1024,
            "jina-clip-v1": 768,
            "jina-embeddings-v2-base-en": 768,
        },
        image_models=frozenset({"jina-clip-v2", "jina-clip-v1", "jina-embeddings-v4"}),
    ),
}


def provider_for(model: str) -> Provider | None:
    """The provider a model name routes to, by its prefix (case-insensitive)."""
    prefix = model.split("/", 1)[0].lower() if "/" in model else ""
    return PROVIDERS.get(prefix)
