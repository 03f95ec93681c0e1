"""The Cohere (Embed v2) flavour of the provider fake (``fakes.providers``).

Provider facts used: cohere-openapi.yaml (github.com/cohere-ai/cohere-developer-experience,
``/v2/embed``): ``model`` and ``input_type`` required (``search_document`` | ``search_query`` |
``classification`` | ``clustering`` | ``image``); ``texts`` at most 96; ``images`` data URIs of
``image/jpeg|png|webp|gif``, at most 1 per call and 5 MB for Embed v3.x models, any number but
20 MB combined for Embed v4.0 and newer; ``inputs`` at most 96 (``{content: [{type: "text",
text} | {type: "image_url", image_url: {url}}]}``); ``max_tokens``; ``output_dimension`` 256 |
512 | 1024 | 1536, embed-v4 and newer only; ``embedding_types`` float, int8, uint8, binary,
ubinary, base64 (default float; base64 is "the float embedding bytes ... base64 encoded");
``truncate`` NONE | START | END (default END); ``priority`` 0..999.  Response ``{id,
embeddings: {float: [[...]], base64: [...]}, texts, images: [{width, height, format,
bit_depth}], meta: {api_version: {version: "2"}, billed_units: {input_tokens | images}},
response_type: "embeddings_by_type"}``; errors ``{id, message}``.  Cohere does not fetch URLs.
Per-input context (512 tokens for v3, 128k for v4) is from the model pages (AWS / OCI docs).
Binary / int8 output types are not emulated (a 400 says so).
"""

from __future__ import annotations

import json
import uuid
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

COHERE_V3_TOKENS = 512
COHERE_V4_TOKENS = 128_000


class CohereApi(Api):
    flavor = "cohere"
    base_path = ""
    endpoint_path = "/v2/embed"
    fields = frozenset(
        {
            "model",
            "input_type",
            "embedding_types",
            "texts",
            "images",
            "inputs",
            "output_dimension",
            "truncate",
            "max_tokens",
            "priority",
        }
    )
    variant_fields = ("input_type", "output_dimension")
    input_types = ("search_document", "search_query", "classification", "clustering", "image")
    embedding_types = ("float", "int8", "uint8", "binary", "ubinary", "base64")
    image_mimes = ("image/jpeg", "image/png", "image/webp", "image/gif")

    def error(
        self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()
    ) -> ApiError:
        return ApiError(status, {"id": str(uuid.uuid4()), "message": message}, message, headers)

    def invalid(self, message: str) -> ApiError:
        return self.error(400, f"invalid request: {message}")

    def auth_error(self, presented: str | None) -> ApiError:
        if presented is None:
            return self.error(401, "no api key supplied")
        if self.server.echo_key_in_errors:
            return self.error(401, f"invalid api token: {presented}")
        return self.error(401, "invalid api token")

    def fault_error(self, status: int, model: str | None) -> ApiError:
        messages = {
            429: "You are past the per minute request limit, please wait and try again later.",
            500: "internal server error, this has been reported to our developers",
            503: "service unavailable, please try again later",
        }
        return self.error(status, messages.get(status, f"injected fault: HTTP {status}"))

    def json_error(self, detail: str) -> ApiError:
        return self.invalid(f"body is not valid JSON: {detail}")

    @staticmethod
    def _is_v3(model: str) -> bool:
        return model.endswith(("-v3.0", "-v2.0"))

    def parse(self, doc: Any, found: list[Input]) -> Parsed:
        if not isinstance(doc, dict):
            raise self.invalid("body must be a JSON object")
        unknown = sorted(set(doc) - self.fields)
        if unknown:
            raise self.invalid(f"unknown field: parameter {unknown[0]} is not a valid field")
        model = doc.get("model")
        if not isinstance(model, str) or not model:
            raise self.invalid("model must be a non-empty string")
        input_type = doc.get("input_type")
        if input_type not in self.input_types:
            if input_type is None:
                raise self.invalid("valid input_type must be provided with the provided model")
            raise self.invalid(
                f"input_type must be one of {', '.join(self.input_types)}; got {input_type!r}"
            )
        types = doc.get("embedding_types")
        types = ["float"] if types is None else types
        if not isinstance(types, list) or not types:
            raise self.invalid("embedding_types must be a non-empty array")
        for t in types:
            if t not in self.embedding_types:
                raise self.invalid(
                    f"embedding_types must be one of {', '.join(self.embedding_types)}; got {t!r}"
                )
            if t not in ("float", "base64"):
                raise self.invalid(f"embedding type {t!r} is not supported by this emulator")
        truncate = doc.get("truncate")
        truncate = "END" if truncate is None else truncate
        if truncate not in ("NONE", "START", "END"):
            raise self.invalid(f"truncate must be one of NONE, START, END; got {truncate!r}")
        max_tokens = doc.get("max_tokens")
        if max_tokens is not None and (not is_int(max_tokens) or max_tokens < 1):
            raise self.invalid("max_tokens must be a positive integer")
        priority = doc.get("priority")
        if priority is not None and (not is_int(priority) or not 0 <= priority <= 999):
            raise self.invalid("priority must be an integer between 0 and 999")
        dims = doc.get("output_dimension")
        if dims is not None:
            if not model.startswith("embed-v4"):
                raise self.invalid(f"output_dimension is not supported for model {model}")
            if not is_int(dims) or dims not in (256, 512, 1024, 1536):
                raise self.invalid("output_dimension must be one of 256, 512, 1024, 1536")
            if dims > self.server.full_dim(model):
                raise self.invalid(f"output_dimension {dims} is larger than the model's size")
        given = [name for name in ("texts", "images", "inputs") if doc.get(name) is not None]
        if len(given) != 1:
            raise self.invalid("exactly one of texts, images or inputs must be provided")
        kind = given[0]
        raw = doc[kind]
        if not isinstance(raw, list) or not raw:
            raise self.invalid(f"{kind} must be a non-empty array")
        if kind == "texts":
            inputs = self._texts(raw, found)
        elif kind == "images":
            inputs = self._images(model, raw, found)
        else:
            inputs = self._mixed(model, raw, found)
        limit = self._limit("max_input_tokens")
        if limit is None:
            limit = COHERE_V3_TOKENS if self._is_v3(model) else COHERE_V4_TOKENS
        if max_tokens is not None:
            limit = min(limit, max_tokens)
        poisoned = self._check_poison(inputs)
        billed = 0
        for i, inp in enumerate(inputs):
            if i == poisoned:
                raise self.invalid(f"input at index {i} was rejected (injected poison)").poisoned()
            if inp.text is not None and inp.tokens > limit and truncate == "NONE":
                raise self.invalid(
                    f"text at index {i} is too long: {inp.tokens} tokens, the maximum is {limit} "
                    "tokens when truncate is NONE"
                )
            billed += min(inp.tokens, limit)
        images = sum(1 for inp in inputs if inp.kind == "image")
        texts = [inp.text for inp in inputs if inp.kind == "text" and inp.text is not None]
        return Parsed(
            model,
            inputs,
            dims=dims,
            formats=tuple(dict.fromkeys(types)),
            tokens=billed if images == 0 else 0,
            images=images,
            texts=texts,
        )

    def _texts(self, raw: list[Any], found: list[Input]) -> list[Input]:
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(raw) > max_inputs:
            raise self.invalid(f"too many texts: got {len(raw)}, the maximum is {max_inputs}")
        if not all(isinstance(t, str) for t in raw):
            raise self.invalid("texts must be an array of strings")
        found.extend(Input(t, "text", count_tokens(t), text=t) for t in raw)
        return list(found)

    def _image(self, model: str, index: int, value: Any) -> tuple[Input, int]:
        if not isinstance(value, str):
            raise self.invalid(f"image at index {index} must be a string")
        if value.startswith(("http://", "https://")):
            raise self.invalid(
                f"image at index {index} must be a base64 data URI "
                "(data:image/<format>;base64,...); image URLs are not fetched"
            )
        parts = split_data_url(value)
        if parts is None or parts[0] not in self.image_mimes:
            raise self.invalid(
                f"image at index {index} must be a valid data URI of type "
                f"{', '.join(self.image_mimes)}"
            )
        data = b64decode(parts[1])
        meta = None if data is None else decode_image(data)
        if data is None or meta is None:
            raise self.invalid(f"image at index {index} could not be decoded")
        max_bytes = self._limit("max_image_bytes_v3")
        if self._is_v3(model) and max_bytes is not None and len(data) > max_bytes:
            raise self.invalid(f"image at index {index} is larger than {max_bytes} bytes")
        return Input(value, "image", 0, image=meta), len(data)

    def _check_image_count(self, model: str, n: int, total_bytes: int) -> None:
        max_images = self._limit("max_images_v3")
        if self._is_v3(model) and max_images is not None and n > max_images:
            raise self.invalid(
                f"too many images: got {n}, model {model} accepts at most {max_images} per call"
            )
        max_total = self._limit("max_total_image_bytes")
        if max_total is not None and total_bytes > max_total:
            raise self.invalid(f"images are larger than {max_total} bytes in total")

    def _images(self, model: str, raw: list[Any], found: list[Input]) -> list[Input]:
        self._check_image_count(model, len(raw), 0)
        total = 0
        for i, value in enumerate(raw):
            inp, size = self._image(model, i, value)
            found.append(inp)
            total += size
        self._check_image_count(model, len(raw), total)
        return list(found)

    def _mixed(self, model: str, raw: list[Any], found: list[Input]) -> list[Input]:
        max_inputs = self._limit("max_inputs")
        if max_inputs is not None and len(raw) > max_inputs:
            raise self.invalid(f"too many inputs: got {len(raw)}, the maximum is {max_inputs}")
        n_images = 0
        total = 0
        for i, item in enumerate(raw):
            content = item.get("content") if isinstance(item, dict) else None
            if not isinstance(content, list) or not content or set(item) != {"content"}:
                raise self.invalid(f"inputs[{i}] must be an object with a non-empty content array")
            texts: list[str] = []
            urls: list[str] = []
            metas: list[dict[str, Any] | None] = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind == "image_url":
                    url = part.get("image_url")
                    url = url.get("url") if isinstance(url, dict) else url
                    inp, size = self._image(model, i, url)
                    urls.append(inp.identity)
                    metas.append(inp.image)
                    total += size
                else:
                    raise self.invalid(f"inputs[{i}].content has an invalid part")
            n_images += len(urls)
            if len(content) == 1:
                identity = texts[0] if texts else urls[0]
            else:
                identity = json.dumps(content, separators=(",", ":"), sort_keys=True)
            joined = "\n".join(texts) if texts else None
            tokens = count_tokens(joined) if joined is not None else 0
            kind_ = "text" if not urls else ("image" if not texts else "mixed")
            meta = metas[0] if kind_ == "image" else None
            found.append(Input(identity, kind_, tokens, text=joined, image=meta))
        self._check_image_count(model, n_images, total)
        return list(found)

    def render(self, req: Parsed, vectors: np.ndarray) -> dict[str, Any]:
        embeddings = {fmt: encode(vectors, fmt) for fmt in req.formats}
        billed: dict[str, int] = {"input_tokens": req.tokens}
        if req.images:
            billed = {"images": req.images}
        doc: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "embeddings": embeddings,
            "texts": req.texts,
        }
        if req.images:
            doc["images"] = [inp.image for inp in req.inputs if inp.image is not None]
        doc["meta"] = {"api_version": {"version": "2"}, "billed_units": billed}
        doc["response_type"] = "embeddings_by_type"
        return doc
