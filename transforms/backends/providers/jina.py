"""Jina ``POST /v1/embeddings``: ``input`` strings or ``{text}``/``{image}`` objects, ``task``,
``dimensions``, ``late_chunking``, ``normalized``, ``embedding_type``. Jina fetches image URLs
itself and takes other images as bare base64."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from qdrant_beam.transforms.backends.providers.base import RemoteInput
from qdrant_beam.transforms.backends.providers.openai import OpenAI
from qdrant_beam.transforms.images import ImageReader, decode_image

__all__ = ["Jina"]


class Jina(OpenAI):
    """Jina's response is OpenAI's (``data``, ``usage``); its request is its own."""

    name = "jinaai"
    default_base_url = "https://api.jina.ai/v1"
    path = "/embeddings"
    env_key = "JINA_API_KEY"
    option_key = "jina-api-key"
    max_inputs = 2048
    max_request_tokens = None
    max_input_tokens = 8192
    max_images = 2048
    call_options = frozenset(
        {"task", "dimensions", "late_chunking", "normalized", "embedding_type", "truncate"}
    )
    dim_option = "dimensions"
    dims = {
        "jina-embeddings-v3": 1024,
        "jina-embeddings-v4": 2048,
        "jina-clip-v2": 1024,
        "jina-clip-v1": 768,
        "jina-embeddings-v2-base-en": 768,
    }
    image_models = frozenset({"jina-clip-v2", "jina-clip-v1", "jina-embeddings-v4"})

    def encoding_options(self, encoding: str) -> dict[str, Any]:
        return {"embedding_type": encoding}

    def image_input(self, value: Any, reader: ImageReader) -> RemoteInput:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return RemoteInput("image", value)  # Jina fetches URLs itself
        data = reader.read(value)
        decode_image(data, reader.limits)  # refuse what is not a supported image here
        return RemoteInput("image", base64.b64encode(data).decode())

    def build(
        self,
        model: str,
        inputs: Sequence[RemoteInput],
        options: Mapping[str, Any],
        is_query: bool,
    ) -> dict[str, Any]:
        model_id = self.model_id(model)
        if self.takes_images(model):
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
