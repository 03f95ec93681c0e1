"""Build ``qdrant_client.models`` objects from values that are already checked.

``model_construct`` skips validation but still walks every field for aliases and defaults;
on the hot path (three objects per record: a ``Document`` and two ``PointStruct``s) that
walk is most of its cost. ``construct`` sets the instance slots the same way when every
field is given and the model has no aliases, private attributes, post-init hook or extra
fields, and falls back to ``model_construct`` otherwise. Measured: 1.4 against 4.0 us for
a ``PointStruct``.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["construct"]

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__


@functools.cache
def _slot_fields(cls: type[BaseModel]) -> frozenset[str] | None:
    """The field names when ``cls`` can be built by setting its slots, else None."""
    fields = cls.model_fields
    plain = (
        not cls.__pydantic_root_model__
        and cls.__pydantic_post_init__ is None
        and not cls.__private_attributes__
        and cls.model_config.get("extra") != "allow"
        and all(f.alias is None and f.validation_alias is None for f in fields.values())
    )
    return frozenset(fields) if plain else None


def construct(cls: type[M], **values: Any) -> M:
    """``cls.model_construct(**values)``, faster when every field of ``cls`` is given.

    Pass the fields in the model's order: the instance's ``__dict__`` keeps the call's
    order, as ``model_construct`` keeps the model's.
    """
    fields = _slot_fields(cls)
    if fields is None or values.keys() != fields:
        return cls.model_construct(**values)
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj
