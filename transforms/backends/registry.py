"""Route a model name to a backend and describe the model without loading any weights.

Routing follows Qdrant's Inference API, case-insensitively: a provider prefix (the one routing
table, ``providers.PROVIDERS``) goes to that remote provider, everything else to a local
fastembed model (``qdrant/bm25`` is fastembed's Bm25). An explicit local folder for a
name overrides the provider prefix. The model's vector kind and size come from fastembed's
own model lists, or from the spec for custom models.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Mapping

from qdrant_beam.io.errors import SpecError
from qdrant_beam.transforms.backends.providers import PROVIDERS, Provider, provider_for

__all__ = [
    "BM25_MODEL",
    "Family",
    "InputKind",
    "ModelInfo",
    "VectorKind",
    "default_input_kind",
    "describe_model",
    "known_local_models",
]

BM25_MODEL = "Qdrant/bm25"


class VectorKind(str, enum.Enum):
    DENSE = "dense"
    SPARSE = "sparse"
    MULTIVECTOR = "multivector"


class InputKind(str, enum.Enum):
    TEXT = "text"
    IMAGE = "image"


class Family(str, enum.Enum):
    """Which fastembed facade loads the model (or ``remote``)."""

    TEXT = "text"
    SPARSE = "sparse"
    LATE_INTERACTION = "late_interaction"
    IMAGE = "image"
    REMOTE = "remote"


_FAMILY_KIND = {
    Family.TEXT: (VectorKind.DENSE, InputKind.TEXT),
    Family.SPARSE: (VectorKind.SPARSE, InputKind.TEXT),
    Family.LATE_INTERACTION: (VectorKind.MULTIVECTOR, InputKind.TEXT),
    Family.IMAGE: (VectorKind.DENSE, InputKind.IMAGE),
}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the pipeline needs to know about a model before loading it."""

    name: str
    family: Family
    vector_kind: VectorKind
    input_kind: InputKind
    dim: int | None
    requires_idf: bool = False
    custom: bool = False
    model_file: str = "model.onnx"
    pooling: str = "mean"
    normalization: bool = True

    @property
    def is_bm25(self) -> bool:
        return self.name.lower() == BM25_MODEL.lower()


@functools.lru_cache(maxsize=1)
def known_local_models() -> Mapping[str, tuple[Family, str, int | None, bool, str]]:
    """fastembed's model lists by lower-cased name: (family, name, dim, requires_idf, file).

    The first family to list a name wins, in the order text, sparse, late interaction, image;
    a name that fastembed lists both as text and image model is routed by the input kind in
    :func:`describe_model`.
    """
    from fastembed import (
        ImageEmbedding,
        LateInteractionTextEmbedding,
        SparseTextEmbedding,
        TextEmbedding,
    )

    table: dict[str, tuple[Family, str, int | None, bool, str]] = {}
    for family, facade in (
        (Family.TEXT, TextEmbedding),
        (Family.SPARSE, SparseTextEmbedding),
        (Family.LATE_INTERACTION, LateInteractionTextEmbedding),
        (Family.IMAGE, ImageEmbedding),
    ):
        for entry in facade.list_supported_models():
            key = entry["model"].lower()
            if family is Family.IMAGE and key in table:
                key = f"{key}#image"
            table.setdefault(
                key,
                (
                    family,
                    entry["model"],
                    entry.get("dim"),
                    bool(entry.get("requires_idf")),
                    entry["model_file"],
                ),
            )
    return table


def default_input_kind(name: str, *, prefer_image: bool = False) -> InputKind:
    """The input a model takes, for objects that do not say (``InferenceObject``)."""
    table = known_local_models()
    lower = name.lower()
    if f"{lower}#image" in table:
        return InputKind.IMAGE if prefer_image else InputKind.TEXT
    entry = table.get(lower)
    if entry is not None:
        return _FAMILY_KIND[entry[0]][1]
    return InputKind.IMAGE if prefer_image else InputKind.TEXT


def describe_model(
    name: str,
    input_kind: InputKind,
    *,
    declared_kind: VectorKind | None = None,
    declared_dim: int | None = None,
    has_local_folder: bool = False,
    pooling: str = "mean",
    normalization: bool = True,
) -> ModelInfo:
    """Describe ``name`` for an input of ``input_kind``; raises ``SpecError`` naming the fix.

    Args:
        name: the model name as written in the spec or inference object.
        input_kind: whether the model receives text or images.
        declared_kind: the vector kind the spec declares for a custom model.
        declared_dim: the size the spec declares (overrides fastembed's list for custom folders).
        has_local_folder: the spec maps the name to a local folder, which beats provider routing.
    """
    provider = provider_for(name)
    if provider is not None and not has_local_folder:
        return _describe_remote(provider, name, input_kind, declared_kind, declared_dim)
    table = known_local_models()
    lookup = name.lower()
    if input_kind is InputKind.IMAGE and f"{lookup}#image" in table:
        lookup = f"{lookup}#image"
    entry = table.get(lookup)
    if entry is not None:
        family, canonical, dim, requires_idf, model_file = entry
        vector_kind, expected_input = _FAMILY_KIND[family]
        if expected_input is not input_kind:
            raise SpecError(
                f"model {name!r} embeds {expected_input.value} but the vector gives it "
                f"{input_kind.value}; use `{expected_input.value}:` for this model"
            )
        if declared_kind is not None and declared_kind is not vector_kind:
            raise SpecError(
                f"model {name!r} produces {vector_kind.value} vectors, but the spec declares "
                f"kind {declared_kind.value!r}"
            )
        return ModelInfo(
            canonical,
            family,
            vector_kind,
            input_kind,
            declared_dim or dim,
            requires_idf,
            model_file=model_file,
        )
    if declared_kind is None:
        raise SpecError(
            f"unknown model {name!r}: it is not one of fastembed's models "
            f"(see fastembed's TextEmbedding.list_supported_models()), not 'qdrant/bm25', and has "
            f"no provider prefix ({', '.join(p + '/' for p in PROVIDERS)}). For a custom ONNX "
            f"model, "
            f"declare it under `models:` with `path`, `kind` and `dim`"
        )
    if not has_local_folder:
        raise SpecError(f"custom model {name!r} needs a `path` under `models:`")
    if input_kind is InputKind.IMAGE or declared_kind is not VectorKind.DENSE:
        raise SpecError(
            f"custom model {name!r}: fastembed registers custom models for dense text only; "
            f"for {declared_kind.value} {input_kind.value} models use the name of the fastembed "
            f"model with the same architecture and point `path` at your folder"
        )
    if not declared_dim:
        raise SpecError(f"custom model {name!r} needs `dim` under `models:`")
    return ModelInfo(
        name,
        Family.TEXT,
        VectorKind.DENSE,
        input_kind,
        declared_dim,
        custom=True,
        pooling=pooling,
        normalization=normalization,
    )


def _describe_remote(
    provider: Provider,
    name: str,
    input_kind: InputKind,
    declared_kind: VectorKind | None,
    declared_dim: int | None,
) -> ModelInfo:
    if input_kind is InputKind.IMAGE and not provider.takes_images(name):
        takes = sorted(provider.image_models)
        raise SpecError(
            f"model {name!r} embeds text only; {provider.name} image models: "
            f"{', '.join(takes) if takes else 'none'}"
        )
    if declared_kind is not None and declared_kind is not VectorKind.DENSE:
        raise SpecError(f"remote model {name!r} makes dense vectors, not {declared_kind.value}")
    return ModelInfo(
        name,
        Family.REMOTE,
        VectorKind.DENSE,
        input_kind,
        declared_dim or provider.known_dim(name),
    )
