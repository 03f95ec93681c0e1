"""The remote embedding providers and the one routing table from model-name prefix to provider.

Routing follows Qdrant's Inference API, case-insensitively: ``openai/``, ``cohere/``,
``jinaai/`` and ``openrouter/`` name a provider; a model mapped to a local folder in a spec
is local whatever its prefix (``registry.describe_model``).
"""

from __future__ import annotations

from qdrant_beam.transforms.backends.providers.base import Provider, RemoteInput, estimate_tokens
from qdrant_beam.transforms.backends.providers.cohere import Cohere
from qdrant_beam.transforms.backends.providers.config import ProviderConfig
from qdrant_beam.transforms.backends.providers.jina import Jina
from qdrant_beam.transforms.backends.providers.openai import OpenAI, OpenRouter

__all__ = [
    "PROVIDERS",
    "Provider",
    "ProviderConfig",
    "RemoteInput",
    "estimate_tokens",
    "provider_for",
]

#: The routing table: prefix -> provider.
PROVIDERS: dict[str, Provider] = {p.name: p for p in (OpenAI(), OpenRouter(), Cohere(), Jina())}


def provider_for(model: str) -> Provider | None:
    """The provider a model name routes to, by its prefix (case-insensitive)."""
    prefix = model.split("/", 1)[0].lower() if "/" in model else ""
    return PROVIDERS.get(prefix)
