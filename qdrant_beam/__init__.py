"""qdrant-beam: Apache Beam transforms that turn records into Qdrant points."""

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
