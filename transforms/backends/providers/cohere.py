"""Cohere Embed v2 ``POST /v2/embed``: ``texts`` (at most 96) or ``images`` (data URLs, one per
call), ``input_type``, ``embedding_types``, ``output_dimension``, ``truncate``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qdrant_beam.io.errors import PermanentError
from qdrant_beam.transforms.backends.providers.base import Provider, RemoteInput, decode_vector

__all__ = ["Cohere"]

_QUERY, _DOCUMENT = "search_query", "search_document"
_MODELS = {
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
    "embed-v4.0": 1536,
}


class Cohere(Provider):
    name = "cohere"
    default_base_url = "https://api.cohere.com"
    path = "/v2/embed"
    env_key = "COHERE_API_KEY"
    option_key = "cohere-api-key"
    max_inputs = 96
    max_images = 1
    call_options = frozenset({"output_dimension", "truncate", "max_tokens"})
    dim_option = "output_dimension"
    dims = _MODELS
    image_models = frozenset(_MODELS)
    passthrough_input_types = frozenset({"classification", "clustering", "image"})

    def build(
        self,
        model: str,
        inputs: Sequence[RemoteInput],
        options: Mapping[str, Any],
        is_query: bool,
    ) -> dict[str, Any]:
        images = inputs[0].kind == "image"
        input_type = options.get("input_type") or (
            "image" if images else (_QUERY if is_query else _DOCUMENT)
        )
        body: dict[str, Any] = {
            "model": self.model_id(model),
            "input_type": input_type,
            "embedding_types": ["float"],
        }
        body["images" if images else "texts"] = [item.value for item in inputs]
        for key in ("output_dimension", "truncate", "max_tokens"):
            if key in options:
                body[key] = options[key]
        return body

    def parse(self, body: Any, expected: int) -> tuple[list[np.ndarray], int]:
        if not isinstance(body, dict):
            raise PermanentError(f"{self.name} answered with a non-object body")
        embeddings = body.get("embeddings")
        if not isinstance(embeddings, dict):
            raise PermanentError("cohere response has no `embeddings` object")
        raw = embeddings.get("base64") or embeddings.get("float")
        if not isinstance(raw, list):
            raise PermanentError("cohere response has no float or base64 embeddings")
        billed = body.get("meta", {}).get("billed_units", {}) or {}
        tokens = int(billed.get("input_tokens", 0) or 0) + int(billed.get("image_tokens", 0) or 0)
        return self.check_count([decode_vector(v) for v in raw], expected), tokens
