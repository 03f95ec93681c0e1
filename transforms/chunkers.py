"""The chunkers a spec needs, built on the worker from the models' own tokenizers."""

from __future__ import annotations

from typing import Any

from qdrant_beam.transforms.backends.local import TokenMeter
from qdrant_beam.transforms.backends.providers import estimate_tokens, provider_for
from qdrant_beam.transforms.backends.registry import Family
from qdrant_beam.transforms.chunk_points import CHUNKS
from qdrant_beam.transforms.chunking import Chunker
from qdrant_beam.transforms.spec import ChunkingSpec, PointsSpec

__all__ = ["build", "chunker_for"]


def build(spec: PointsSpec) -> dict[str, Chunker]:
    """One chunker per chunked vector (by name) and, for chunk points, ``CHUNKS``."""
    chunkers = {
        name: chunker_for(spec, name, vector.chunking)
        for name, vector in spec.vectors.items()
        if vector.chunking is not None
    }
    if spec.chunks is not None:
        chunkers[CHUNKS] = chunker_for(spec, spec.chunk_model_vector(), spec.chunks)
    return chunkers


def chunker_for(spec: PointsSpec, vector: str, chunking: ChunkingSpec) -> Chunker:
    """A chunker that counts tokens as ``vector``'s model does.

    Local models count with their ``tokenizer.json``; the default size is the model's window
    less its special tokens. Remote models (and folders without a tokenizer) estimate tokens
    from UTF-8 bytes; their default size is the provider's per-input limit.
    """
    info = spec.model_info(vector)
    common: dict[str, Any] = {"overlap": chunking.overlap, "boundaries": chunking.boundaries}
    if info.family is Family.REMOTE:
        provider = provider_for(info.name)
        assert provider is not None  # routed as remote
        size = chunking.max_tokens or provider.max_input_tokens
        return Chunker(size, count=estimate_tokens, **common)
    folder = spec.catalog().folder(info, spec.split_options(vector).load_dict)
    if not (folder / "tokenizer.json").is_file():
        return Chunker(chunking.max_tokens or 256, count=estimate_tokens, **common)
    meter = TokenMeter(folder)
    size = chunking.max_tokens or meter.max_length - meter.special_tokens
    return Chunker(size, tokenizer=meter.tokenizer, **common)
