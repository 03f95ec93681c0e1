"""How to reach one provider (``providers.<name>`` in a spec): config only, never a secret."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qdrant_beam.io.retry import RetryPolicy
from qdrant_beam.io.window import Concurrency

__all__ = ["PROVIDER_CONCURRENCY", "PROVIDER_RETRY", "ProviderConfig"]

#: Providers rate-limit by the minute: more patient than the Qdrant sink's defaults.
PROVIDER_RETRY = RetryPolicy(
    max_attempts=8,
    initial_backoff_s=0.5,
    max_backoff_s=20.0,
    max_retry_after_s=60.0,
    deadline_s=600.0,
)
PROVIDER_CONCURRENCY = Concurrency(initial=4, minimum=1, maximum=8)

#: Flat names of earlier versions, still accepted: name -> (nested field, its key)
_LEGACY = {
    "max_attempts": ("retry", "max_attempts"),
    "initial_backoff_s": ("retry", "initial_backoff_s"),
    "max_backoff_s": ("retry", "max_backoff_s"),
    "max_retry_after_s": ("retry", "max_retry_after_s"),
    "deadline_s": ("retry", "deadline_s"),
    "max_concurrency": ("concurrency", "maximum"),
    "initial_concurrency": ("concurrency", "initial"),
}


class ProviderConfig(BaseModel):
    """How to reach one provider.

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
    retry: RetryPolicy = Field(
        PROVIDER_RETRY, description="Attempts, backoff, Retry-After cap and deadline."
    )
    concurrency: Concurrency = Field(
        PROVIDER_CONCURRENCY, description="Requests in flight per worker (AIMD)."
    )

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_names(cls, data: Any) -> Any:
        """``max_attempts: 3`` or ``retry: {max_attempts: 3}``: either way, what is not given
        keeps the provider defaults (not the sink's)."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        nested: dict[str, dict[str, Any]] = {
            "retry": dataclasses.asdict(PROVIDER_RETRY),
            "concurrency": dataclasses.asdict(PROVIDER_CONCURRENCY),
        }
        for field in nested:
            given = data.get(field)
            if dataclasses.is_dataclass(given):
                nested[field] = dataclasses.asdict(given)  # type: ignore[arg-type]
            elif isinstance(given, Mapping):
                nested[field].update(given)
        for name, (field, key) in _LEGACY.items():
            if name in data:
                nested[field][key] = data.pop(name)
        if nested["concurrency"]["initial"] > nested["concurrency"]["maximum"]:
            nested["concurrency"]["initial"] = nested["concurrency"]["maximum"]
        data.update(nested)
        return data
