"""The Jina flavour of the provider fake (``fakes.providers``).

Provider facts used: api.jina.ai/openapi.json (stored excerpt) plus the Chroma, CAMEL and
LlamaIndex client docs: ``POST /v1/embeddings``, Bearer key; ``model``, ``input`` (strings or
``{text}`` / ``{image}`` objects, images for CLIP models), ``task`` (retrieval.query |
retrieval.passage | separation | classification | text-matching; jina-embeddings-v3),
``dimensions`` (Matryoshka: v3, clip-v2), ``late_chunking``, ``normalized`` (default true),
``embedding_type`` (float | base64 | binary | ubinary | int8 | uint8), ``truncate``; response
``{model, object: "list", usage: {total_tokens, prompt_tokens}, data: [...]}``.  Errors
``{detail: "..."}`` (the public clients raise ``resp["detail"]``); schema errors are FastAPI's
422 ``{detail: [{type, loc, msg, input}]}`` (the OpenAPI lists 422 Validation Error).  The 2048
inputs per request limit is not confirmed by the stored docs (8192 tokens per input is); change
it with ``limits=``.  Binary / int8 output types are not emulated (a 400 says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .provider_apis import (
    Api,
    ApiError,
    Input,
    Parsed,
    b64decode,
    count_tokens,
    decode_image,
    encode,
    is_int,
    split_data_url,
)

JINA_IMAGE_TOKENS = 1000  # an approximation; Jina bills image tiles


class JinaApi(Api):
    flavor = "jinaai"
    base_path = "/v1"
    endpoint_path = "/v1/embeddings"
    fields = frozenset(
        {
            "model",
            "input",
            "task",
            "dimensions",
            "late_chunking",
            "normalized",
            "embedding_type",
            "truncate",
        }
    )
    variant_fields = ("task", "dimensions", "normalized", "late_chunking")
    tasks = (
        "retrieval.query",
        "retrieval.passage",
        "separation",
        "classification",
        "text-matching",
    )
    embedding_types = ("float", "base64", "binary", "ubinary", "int8", "uint8")
    matryoshka = ("jina-embeddings-v3", "jina-clip-v2", "jina-embeddings-v4")
    fixed_size = ("jina-clip-v1", "jina-embeddings-v2-base-en")

    def error(
        self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()
    ) -> ApiError:
        return ApiError(status, {"detail": message}, message, headers)

    def invalid(self, loc: Sequence[str | int], type_: str, msg: str, value: Any) -> ApiError:
        """FastAPI's 422 body for a schema violation."""
        detail = [{"type": type_, "loc": ["body", *loc], "msg": msg, "input": value}]
        where = ".".join(str(p) for p in loc)
        return ApiError(422, {"detail": detail}, f"{where}: {msg}")

    def auth_error(self, presented: str | None) -> ApiError:
        if presented is None:
            return self.error(401, "Authentication required")
        if self.server.echo_key_in_errors:
            return self.error(401, f"Invalid API key: {presented}")
        return self.error(401, "Invalid API key")

    def fault_error(self, status: int, model: str | None) -> ApiError:
        messages = {
            429: "Rate limit exceeded, please retry later.",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        return self.error(status, messages.get(status, f"Injected fault: HTTP {status}"))

    def route_error(self, method: str, path: str, *, known_path: bool) -> ApiError:
        return self.error(405, "Method Not Allowed") if known_path else self.error(404, "Not Found")

    def json_error(self, detail: str) -> ApiError:
        body = {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": detail}]}
        return ApiError(422, body, f"JSON decode error: {detail}")

    def _supports_images(self, model: str) -> bool:
        return "clip" in model or model == "jina-embeddings-v4"

    def parse(self, doc: Any, found: list[Input]) -> Parsed:
        if not isinstance(doc, dict):
            raise self.invalid([], "model_attributes_type", "Input should be an object", doc)
        for name in sorted(doc):
            if name not in self.fields:
                raise self.invalid(
                    [name], "extra_forbidden", "Extra inputs are not permitted", doc[name]
                )
        for name in ("model", "input"):
            if name not in doc:
                raise self.invalid([name], "missing", "Field required", None)
        model = doc["model"]
        if not isinstance(model, str):
            raise self.invalid(["model"], "string_type", "Input should be a valid string", model)
        raw = doc["input"]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise self.invalid(["input"], "list_type", "Input should be a valid list", raw)
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(items) > max_inputs:
            raise self.invalid(
                ["input"],
                "too_long",
                f"List should have at most {max_inputs} items after validation, not {len(items)}",
                None,
            )
        if not items:
            raise self.invalid(
                ["input"],
                "too_short",
                "List should have at least 1 item after validation, not 0",
                [],
            )
        for i, item in enumerate(items):
            found.append(self._item(model, i, item))
        inputs = list(found)
        task = doc.get("task")
        if task is not None:
            if task not in self.tasks:
                allowed = ", ".join(f"'{t}'" for t in self.tasks)
                raise self.invalid(["task"], "literal_error", f"Input should be {allowed}", task)
            if model != "jina-embeddings-v3":
                raise self.error(400, f"Model {model} does not support the task parameter")
        for name in ("late_chunking", "normalized", "truncate"):
            value = doc.get(name)
            if value is not None and not isinstance(value, bool):
                raise self.invalid([name], "bool_type", "Input should be a valid boolean", value)
        normalized = doc.get("normalized")
        normalized = True if normalized is None else normalized
        fmt = doc.get("embedding_type")
        fmt = "float" if fmt is None else fmt
        if fmt not in self.embedding_types:
            allowed = ", ".join(f"'{t}'" for t in self.embedding_types)
            raise self.invalid(
                ["embedding_type"], "literal_error", f"Input should be {allowed}", fmt
            )
        if fmt not in ("float", "base64"):
            raise self.error(400, f"embedding_type {fmt!r} is not supported by this emulator")
        dims = doc.get("dimensions")
        if dims is not None:
            if not is_int(dims):
                raise self.invalid(
                    ["dimensions"], "int_type", "Input should be a valid integer", dims
                )
            full = self.server.full_dim(model)
            if model in self.fixed_size:
                raise self.error(400, f"Model {model} does not support Matryoshka dimensions")
            if not 1 <= dims <= full:
                raise self.error(400, f"dimensions must be between 1 and {full} for model {model}")
        truncate = bool(doc.get("truncate"))
        per_input = self._limit("max_input_tokens")
        poisoned = self._check_poison(inputs)
        for i, inp in enumerate(inputs):
            if i == poisoned:
                raise self.error(
                    400, f"Input at index {i} was rejected (injected poison)"
                ).poisoned()
            if per_input is not None and inp.tokens > per_input and not truncate:
                raise self.error(
                    400,
                    f"Input at index {i} has {inp.tokens} tokens, which exceeds the maximum of "
                    f"{per_input} tokens for model {model}. Set truncate=true to cut it.",
                )
        total = sum(min(inp.tokens, per_input or inp.tokens) for inp in inputs)
        if doc.get("late_chunking") and per_input is not None:
            text_total = sum(inp.tokens for inp in inputs if inp.kind == "text")
            if text_total > per_input:
                raise self.error(
                    400,
                    f"With late_chunking the inputs are embedded as one text of {text_total} "
                    f"tokens, which exceeds the maximum of {per_input} tokens for model {model}.",
                )
        return Parsed(model, inputs, dims=dims, formats=(fmt,), normalized=normalized, tokens=total)

    def _item(self, model: str, i: int, item: Any) -> Input:
        if isinstance(item, str):
            return Input(item, "text", count_tokens(item), text=item)
        if isinstance(item, dict) and len(item) == 1:
            ((key, value),) = item.items()
            if key == "text" and isinstance(value, str):
                return Input(value, "text", count_tokens(value), text=value)
            if key == "image" and isinstance(value, str):
                if not self._supports_images(model):
                    raise self.error(400, f"Model {model} does not support image input")
                if not self._valid_image(value):
                    raise self.error(
                        400, f"Invalid image at index {i}: not a URL or a base64 image"
                    )
                return Input(value, "image", JINA_IMAGE_TOKENS)
        raise self.invalid(
            ["input", i],
            "union_tag_invalid",
            "Input should be a string, a {'text': str} or an {'image': str} object",
            item,
        )

    @staticmethod
    def _valid_image(value: str) -> bool:
        if value.startswith(("http://", "https://")):
            return True  # Jina fetches URLs; this emulator accepts them unfetched
        parts = split_data_url(value)
        data = b64decode(parts[1] if parts else value)
        return data is not None and decode_image(data) is not None

    def render(self, req: Parsed, vectors: np.ndarray) -> dict[str, Any]:
        data = [
            {"object": "embedding", "index": i, "embedding": emb}
            for i, emb in enumerate(encode(vectors, req.formats[0]))
        ]
        usage = {"total_tokens": req.tokens, "prompt_tokens": req.tokens}
        return {"model": req.model, "object": "list", "usage": usage, "data": data}
