"""The OpenAI and OpenRouter flavours of the provider fake (``fakes.providers``).

Provider facts used (stored copies of the public references):

* OpenAI, developers.openai.com/api/reference/resources/embeddings: ``POST /embeddings``;
  ``input`` string, array of strings, array of ints or array of int arrays; at most 2048 items,
  8192 tokens per input, 300,000 tokens summed per request, no empty string; ``model``;
  ``encoding_format`` ``float`` | ``base64``; ``dimensions`` only for ``text-embedding-3`` and
  later; ``user``.  Response ``{object: "list", data: [{object: "embedding", index, embedding}],
  model, usage: {prompt_tokens, total_tokens}}``; errors ``{error: {message, type, param,
  code}}``.  The 300k message (``Requested N tokens, max 300000 tokens per request``, type and
  code ``max_tokens_per_request``) and the context-length message are as quoted from real
  responses in GitHub issues; this fake prefixes the latter with ``Invalid 'input[i]': `` and
  sets ``param`` so the index is named (the real message does not name it).
* OpenRouter, openrouter.ai/docs/api/api-reference/embeddings/create-embeddings and
  openrouter.ai/docs/errors: ``POST /api/v1/embeddings`` with ``input``, ``model``
  (``vendor/name``), ``encoding_format``, ``dimensions``, ``user``, ``provider``,
  ``input_type``; response adds ``id`` and ``usage.cost``; errors ``{error: {code, message,
  metadata?}}`` with ``code`` equal to the HTTP status; ``Retry-After`` may come on 429 /
  503.  Limits are the routed model's (here: OpenAI's).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from .provider_apis import (
    Api,
    ApiError,
    Input,
    Parsed,
    count_tokens,
    encode,
    is_int,
    type_name,
)


class OpenAIApi(Api):
    flavor = "openai"
    base_path = "/v1"
    endpoint_path = "/v1/embeddings"
    fields = frozenset({"input", "model", "encoding_format", "dimensions", "user"})
    variant_fields = ("dimensions",)
    provider_label = "OpenAI"

    def error(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,  # the field's name in OpenAI's body
        param: str | None = None,
        code: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> ApiError:
        if type is None:
            type = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return ApiError(status, body, message, headers)

    def auth_error(self, presented: str | None) -> ApiError:
        if presented is None:
            return self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can obtain "
                "an API key from https://platform.openai.com/account/api-keys.",
            )
        shown = presented if self.server.echo_key_in_errors else _mask(presented)
        return self.error(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def fault_error(self, status: int, model: str | None) -> ApiError:
        if status == 429:
            return self.error(
                429,
                f"Rate limit reached for {model or 'this model'} in organization org-emulator on "
                "requests per min (RPM): Limit 3000, Used 3000, Requested 1. Please try again in "
                "20ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                type="requests",
                code="rate_limit_exceeded",
            )
        messages = {
            500: "The server had an error while processing your request. Sorry about that!",
            502: "Bad gateway.",
            503: "The engine is currently overloaded, please try again later.",
        }
        return self.error(status, messages.get(status, f"Injected fault: HTTP {status}"))

    def json_error(self, detail: str) -> ApiError:
        return self.error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
            "this, please contact us through our help center at help.openai.com.)",
        )

    def _invalid_input(self) -> ApiError:
        return self.error(
            400,
            "'$.input' is invalid. Please check the API reference: "
            "https://platform.openai.com/docs/api-reference.",
        )

    def _check_model(self, model: str) -> None:
        pass

    def _supports_dimensions(self, model: str) -> bool:
        return model.startswith("text-embedding-3")

    def _inputs(self, raw: Any) -> list[Input]:
        if isinstance(raw, str):
            items: list[Any] = [raw]
        elif isinstance(raw, list):
            if not raw:
                raise self.error(
                    400,
                    "Invalid 'input': empty array. Expected an array with minimum length 1, but "
                    "got an empty array instead.",
                    param="input",
                    code="empty_array",
                )
            items = [raw] if all(is_int(t) for t in raw) else raw
        elif raw is None:
            raise self.error(400, "Missing required parameter: 'input'.", param="input")
        else:
            raise self._invalid_input()
        inputs: list[Input] = []
        for item in items:
            if isinstance(item, str) and item:
                inputs.append(Input(item, "text", count_tokens(item), text=item))
            elif isinstance(item, list) and item and all(is_int(t) and t >= 0 for t in item):
                identity = "tokens:" + ",".join(map(str, item))
                inputs.append(Input(identity, "tokens", len(item)))
            else:
                raise self._invalid_input()
        return inputs

    def parse(self, doc: Any, found: list[Input]) -> Parsed:
        if not isinstance(doc, dict):
            raise self.error(400, f"Invalid type for '$': expected an object, got {type_name(doc)}")
        unknown = sorted(set(doc) - self.fields)
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            raise self.error(
                400, f"Unrecognized request argument{plural} supplied: {', '.join(unknown)}"
            )
        model = doc.get("model")
        if model is None:
            raise self.error(400, "you must provide a model parameter")
        if not isinstance(model, str):
            raise self.error(
                400,
                f"Invalid type for 'model': expected a string, but got {type_name(model)} instead.",
                param="model",
                code="invalid_type",
            )
        self._check_model(model)
        inputs = self._inputs(doc.get("input"))
        found.extend(inputs)
        fmt = doc.get("encoding_format")
        fmt = "float" if fmt is None else fmt
        if fmt not in ("float", "base64"):
            raise self.error(
                400,
                f"Invalid value for 'encoding_format': expected one of 'float' or 'base64', but "
                f"got {fmt!r} instead.",
                param="encoding_format",
                code="invalid_value",
            )
        dims = doc.get("dimensions")
        if dims is not None:
            self._check_dimensions(model, dims)
        user = doc.get("user")
        if user is not None and not isinstance(user, str):
            raise self.error(
                400,
                f"Invalid type for 'user': expected a string, but got {type_name(user)} instead.",
                param="user",
                code="invalid_type",
            )
        self._check_provider(doc)
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(inputs) > max_inputs:
            raise self.error(
                400,
                f"Invalid 'input': array too long. Expected an array with maximum length "
                f"{max_inputs}, but got an array with length {len(inputs)} instead.",
                param="input",
                code="array_above_max_length",
            )
        per_input = self._limit("max_input_tokens")
        poisoned = self._check_poison(inputs)
        for i, inp in enumerate(inputs):
            if i == poisoned:
                raise self.error(
                    400,
                    f"Invalid 'input[{i}]': the input was rejected (injected poison).",
                    param=f"input[{i}]",
                    code="invalid_value",
                ).poisoned()
            if per_input is not None and inp.tokens > per_input:
                n = inp.tokens
                raise self.error(
                    400,
                    f"Invalid 'input[{i}]': This model's maximum context length is {per_input} "
                    f"tokens, however you requested {n} tokens ({n} in your prompt; 0 for the "
                    "completion). Please reduce your prompt; or completion length.",
                    param=f"input[{i}]",
                )
        total = sum(inp.tokens for inp in inputs)
        max_total = self._limit("max_request_tokens")
        if max_total is not None and total > max_total:
            raise self.error(
                400,
                f"Requested {total} tokens, max {max_total} tokens per request",
                type="max_tokens_per_request",
                code="max_tokens_per_request",
            )
        return Parsed(model, inputs, dims=dims, formats=(fmt,), tokens=total)

    def _check_dimensions(self, model: str, dims: Any) -> None:
        if not is_int(dims):
            raise self.error(
                400,
                f"Invalid type for 'dimensions': expected an integer, but got {type_name(dims)} "
                "instead.",
                param="dimensions",
                code="invalid_type",
            )
        if not self._supports_dimensions(model):
            raise self.error(400, "This model does not support specifying dimensions.")
        if dims < 1:
            raise self.error(
                400,
                f"Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but "
                f"got {dims} instead.",
                param="dimensions",
                code="integer_below_min_value",
            )
        full = self.server.full_dim(model)
        if dims > full:
            raise self.error(
                400,
                f"Invalid 'dimensions': integer above maximum value. Expected a value <= {full}, "
                f"but got {dims} instead.",
                param="dimensions",
                code="integer_above_max_value",
            )

    def _check_provider(self, doc: dict[str, Any]) -> None:
        pass

    def render(self, req: Parsed, vectors: np.ndarray) -> dict[str, Any]:
        fmt = req.formats[0]
        data = [
            {"object": "embedding", "index": i, "embedding": emb}
            for i, emb in enumerate(encode(vectors, fmt))
        ]
        usage = {"prompt_tokens": req.tokens, "total_tokens": req.tokens}
        return {"object": "list", "data": data, "model": req.model, "usage": usage}


def _mask(key: str) -> str:
    """OpenAI shows a wrong key as its first 3 and last 4 characters around asterisks."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


class OpenRouterApi(OpenAIApi):
    flavor = "openrouter"
    base_path = "/api/v1"
    endpoint_path = "/api/v1/embeddings"
    fields = frozenset(
        {"input", "model", "encoding_format", "dimensions", "user", "provider", "input_type"}
    )

    def error(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,  # accepted for the shared OpenAI validation
        param: str | None = None,
        code: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> ApiError:
        body = {"error": {"code": status, "message": message}}
        return ApiError(status, body, message, headers)

    def auth_error(self, presented: str | None) -> ApiError:
        if presented is None:
            return self.error(401, "No auth credentials found")
        if self.server.echo_key_in_errors:
            return self.error(401, f"User not found for API key {presented}")
        return self.error(401, "User not found.")

    def fault_error(self, status: int, model: str | None) -> ApiError:
        messages = {
            429: f"Rate limit exceeded for {model or 'this model'}. Please retry shortly.",
            500: "Internal Server Error",
            502: "Provider returned error",
            503: "No allowed providers are available for the selected model.",
        }
        return self.error(status, messages.get(status, f"Injected fault: HTTP {status}"))

    def json_error(self, detail: str) -> ApiError:
        return self.error(400, f"Invalid JSON body: {detail}")

    def _check_model(self, model: str) -> None:
        if "/" not in model.strip("/"):
            raise self.error(400, f"{model} is not a valid model ID")

    def _supports_dimensions(self, model: str) -> bool:
        vendor, _, name = model.partition("/")
        return vendor != "openai" or name.startswith("text-embedding-3")

    def _check_provider(self, doc: dict[str, Any]) -> None:
        provider = doc.get("provider")
        if provider is not None and not isinstance(provider, dict):
            raise self.error(400, "Invalid provider preferences: expected an object")
        input_type = doc.get("input_type")
        if input_type is not None and not isinstance(input_type, str):
            raise self.error(400, "Invalid input_type: expected a string")

    def render(self, req: Parsed, vectors: np.ndarray) -> dict[str, Any]:
        doc = super().render(req, vectors)
        doc["usage"]["cost"] = round(req.tokens * 2e-8, 12)
        return {"id": f"gen-emb-{uuid.uuid4().hex[:24]}", **doc}
