"""OpenAI ``POST /v1/embeddings`` and OpenRouter's OpenAI-compatible ``POST /api/v1/embeddings``.

OpenAI: ``input`` list, ``model``, ``dimensions``, ``encoding_format``; at most 2,048 inputs and
300,000 tokens per request. OpenRouter: the same format; model names carry their own vendor
prefix (``openrouter/openai/text-embedding-3-small`` sends ``openai/text-embedding-3-small``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from qdrant_beam.io.errors import PermanentError
from qdrant_beam.transforms.backends.providers.base import Provider, RemoteInput, decode_vector

__all__ = ["OpenAI", "OpenRouter"]

_OPENAI_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAI(Provider):
    name = "openai"
    default_base_url = "https://api.openai.com/v1"
    path = "/embeddings"
    env_key = "OPENAI_API_KEY"
    option_key = "openai-api-key"
    max_inputs = 2048
    max_request_tokens: ClassVar[int | None] = 300_000
    max_input_tokens = 8191
    call_options = frozenset({"dimensions", "user", "encoding_format"})
    dim_option = "dimensions"
    dims = _OPENAI_DIMS
    #: request fields passed through from the options
    body_options: tuple[str, ...] = ("dimensions", "user")

    def encoding_options(self, encoding: str) -> dict[str, Any]:
        return {"encoding_format": encoding}

    def build(
        self,
        model: str,
        inputs: Sequence[RemoteInput],
        options: Mapping[str, Any],
        is_query: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id(model),
            "input": [item.value for item in inputs],
            "encoding_format": options.get("encoding_format", "float"),
        }
        for key in self.body_options:
            if key in options:
                body[key] = options[key]
        return body

    def parse(self, body: Any, expected: int) -> tuple[list[np.ndarray], int]:
        if not isinstance(body, dict):
            raise PermanentError(f"{self.name} answered with a non-object body")
        data = body.get("data")
        if not isinstance(data, list):
            raise PermanentError(f"{self.name} response has no `data` list")
        ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
        vectors = [decode_vector(item["embedding"]) for item in ordered]
        usage = body.get("usage") or {}
        tokens = int(usage.get("total_tokens", usage.get("prompt_tokens", 0)) or 0)
        return self.check_count(vectors, expected), tokens


class OpenRouter(OpenAI):
    name = "openrouter"
    default_base_url = "https://openrouter.ai/api/v1"
    env_key = "OPENROUTER_API_KEY"
    option_key = "openrouter-api-key"
    call_options = frozenset({"dimensions", "user", "encoding_format", "provider"})
    body_options = ("dimensions", "user", "provider")
