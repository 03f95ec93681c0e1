"""qdrant-beam: Apache Beam transforms that turn records into Qdrant points.

One import line goes from records to points to Qdrant::

    from qdrant_beam import EmbedPoints, QdrantTarget, WriteToQdrant, load_spec

The names below load on first use (PEP 562), so that ``qdrant_beam.console`` can set up
logging and pause the garbage collector before Beam and qdrant-client are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qdrant_beam.connectors import CollectionSchema, QdrantTarget, WriteToQdrant
    from qdrant_beam.transforms import (
        EmbedPoints,
        FailedRecord,
        PointsSpec,
        RecordsToPoints,
        ResolveInference,
        load_spec,
    )

_HOMES = {
    "EmbedPoints": "qdrant_beam.transforms",
    "FailedRecord": "qdrant_beam.transforms",
    "PointsSpec": "qdrant_beam.transforms",
    "RecordsToPoints": "qdrant_beam.transforms",
    "ResolveInference": "qdrant_beam.transforms",
    "load_spec": "qdrant_beam.transforms",
    "CollectionSchema": "qdrant_beam.connectors",
    "QdrantTarget": "qdrant_beam.connectors",
    "WriteToQdrant": "qdrant_beam.connectors",
}

__all__ = [
    "CollectionSchema",
    "EmbedPoints",
    "FailedRecord",
    "PointsSpec",
    "QdrantTarget",
    "RecordsToPoints",
    "ResolveInference",
    "WriteToQdrant",
    "load_spec",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qdrant_beam' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
