"""qdrant-beam: Apache Beam transforms that turn records into Qdrant points.

The names below load on first use (PEP 562), so that ``qdrant_beam.console`` can pause the
garbage collector before Beam and qdrant-client are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qdrant_beam.transforms import (
        EmbedPoints,
        FailedRecord,
        PointsSpec,
        RecordsToPoints,
        ResolveInference,
        load_spec,
    )

__all__ = [
    "EmbedPoints",
    "FailedRecord",
    "PointsSpec",
    "RecordsToPoints",
    "ResolveInference",
    "load_spec",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("qdrant_beam.transforms"), name)
    raise AttributeError(f"module 'qdrant_beam' has no attribute {name!r}")
