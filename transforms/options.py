"""Inference-object options understood by local models, split by when they act.

* load options pick the model instance (a folder, BM25 parameters): objects that differ in
  them cannot share a model call;
* call options change how the call is made (query or passage embedding);
* ``mrl`` acts after the call: it truncates a dense vector, so it never splits a call.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from qdrant_beam.io.errors import UnsupportedOption
from qdrant_beam.transforms.backends.providers import provider_for
from qdrant_beam.transforms.backends.registry import Family, ModelInfo, VectorKind

__all__ = [
    "MRL",
    "FrozenJson",
    "SplitOptions",
    "canonical_json",
    "split_options",
    "thaw_options",
]

MRL = "mrl"
INPUT_TYPE = "input_type"
SPECIFIC_MODEL_PATH = "specific_model_path"

_QUERY_TYPES = {"query", "search_query"}
_PASSAGE_TYPES = {"passage", "document", "search_document"}
_BM25_LOAD = {"k", "b", "avg_len", "language", "disable_stemmer", "token_max_length"}
_FAMILY_LOAD = {
    Family.TEXT: {SPECIFIC_MODEL_PATH},
    Family.LATE_INTERACTION: {SPECIFIC_MODEL_PATH},
    Family.IMAGE: {SPECIFIC_MODEL_PATH},
    Family.SPARSE: {SPECIFIC_MODEL_PATH},
}


class FrozenJson(str):
    """A dict or list option held as canonical JSON, so call groups stay hashable."""

    def thaw(self) -> Any:
        return json.loads(self)


def thaw_options(load: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """Load options as the provider should receive them."""
    return {k: v.thaw() if isinstance(v, FrozenJson) else v for k, v in load}


def canonical_json(value: Any) -> str:
    """A stable text form of options for keys: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclasses.dataclass(frozen=True)
class SplitOptions:
    """Options of one inference object, split by when they act."""

    load: tuple[tuple[str, Any], ...]
    is_query: bool
    mrl: int | None
    #: the size a remote model is asked for (``dimensions`` / ``output_dimension``)
    output_dim: int | None = None
    #: an API key given in the object's options; never part of a key, never printed
    secret: str | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int | None:
        """The size of the model's output before ``mrl``, when the options set it."""
        return self.output_dim

    @property
    def load_dict(self) -> dict[str, Any]:
        return dict(self.load)


def split_options(info: ModelInfo, options: Mapping[str, Any] | None) -> SplitOptions:
    """Validate ``options`` for ``info``'s model; raises ``UnsupportedOption`` naming the fix."""
    options = dict(options or {})
    if info.family is Family.REMOTE:
        return _split_remote(info, options)
    allowed_load = set(_FAMILY_LOAD[info.family])
    if info.is_bm25:
        allowed_load |= _BM25_LOAD
    load: dict[str, Any] = {}
    is_query = False
    mrl: int | None = None
    for key, value in options.items():
        if key == MRL:
            mrl = _mrl(info, value)
        elif key == INPUT_TYPE:
            if value in _QUERY_TYPES:
                is_query = True
            elif value not in _PASSAGE_TYPES:
                raise UnsupportedOption(
                    f"option input_type={value!r} for model {info.name!r}: use 'passage' "
                    f"(the default, for indexing) or 'query'"
                )
        elif key in allowed_load:
            load[key] = value
        else:
            allowed = sorted(allowed_load | {INPUT_TYPE} | ({MRL} if _mrl_ok(info) else set()))
            raise UnsupportedOption(
                f"option {key!r} is not understood by the local model {info.name!r}; "
                f"supported options: {', '.join(allowed)}"
            )
    return SplitOptions(tuple(sorted(load.items())), is_query, mrl)


def _split_remote(info: ModelInfo, options: dict[str, Any]) -> SplitOptions:
    provider = provider_for(info.name)
    assert provider is not None  # describe_model routed it here
    load: dict[str, Any] = {}
    is_query = False
    secret: str | None = None
    mrl_value: Any = None
    for key, value in options.items():
        if key == MRL:
            mrl_value = value
        elif key == provider.option_key:
            if not isinstance(value, str) or not value:
                raise UnsupportedOption(f"option {key!r} must be a non-empty string")
            secret = value
        elif key == INPUT_TYPE:
            if value in _QUERY_TYPES:
                is_query = True
            elif value in provider.passthrough_input_types:
                load[key] = value
            elif value not in _PASSAGE_TYPES:
                raise UnsupportedOption(
                    f"option input_type={value!r} for model {info.name!r}: use 'passage' "
                    f"(the default, for indexing) or 'query'"
                )
        elif key in provider.call_options:
            frozen = isinstance(value, (dict, list))
            load[key] = FrozenJson(canonical_json(value)) if frozen else value
        else:
            allowed = sorted(provider.call_options | {INPUT_TYPE, MRL, provider.option_key})
            raise UnsupportedOption(
                f"option {key!r} is not understood by {provider.name} model {info.name!r}; "
                f"supported options: {', '.join(allowed)}"
            )
    output_dim = provider.output_dim(options)
    size = output_dim or info.dim
    mrl = None
    if mrl_value is not None:
        mrl = _mrl(dataclasses.replace(info, dim=size), mrl_value)
    return SplitOptions(tuple(sorted(load.items())), is_query, mrl, output_dim, secret)


def _mrl_ok(info: ModelInfo) -> bool:
    return info.vector_kind is VectorKind.DENSE


def _mrl(info: ModelInfo, value: Any) -> int:
    if not _mrl_ok(info):
        raise UnsupportedOption(
            f"option mrl applies to dense vectors only; model {info.name!r} makes "
            f"{info.vector_kind.value} vectors"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnsupportedOption(f"option mrl must be a positive integer, got {value!r}")
    if info.dim is not None and value > info.dim:
        raise UnsupportedOption(
            f"option mrl={value} exceeds the size {info.dim} of model {info.name!r}"
        )
    return value
