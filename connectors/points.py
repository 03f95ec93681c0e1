"""What the sink checks and measures of one point, before it is sent."""

from __future__ import annotations

import json
import uuid
from typing import Any

from qdrant_client import models

__all__ = ["has_inference_objects", "point_bytes", "valid_id"]

_BYTES_PER_FLOAT = 10  # "0.12345678," in JSON
_BYTES_PER_SPARSE_ENTRY = 20
_INFERENCE_TYPES = (models.Document, models.Image, models.InferenceObject)


def point_bytes(point: models.PointStruct) -> int:
    """Estimated JSON size of a point: bounds request bodies without serialising twice."""
    size = 64
    vector = point.vector
    values = vector.values() if isinstance(vector, dict) else [vector]
    for value in values:
        if isinstance(value, models.SparseVector):
            size += _BYTES_PER_SPARSE_ENTRY * len(value.indices)
        elif isinstance(value, list) and value and isinstance(value[0], list):
            size += _BYTES_PER_FLOAT * sum(len(row) for row in value)
        elif isinstance(value, list):
            size += _BYTES_PER_FLOAT * len(value)
        else:
            size += 1024  # an inference object for server-side inference
    if point.payload:
        size += len(json.dumps(point.payload, default=str))
    return size


def has_inference_objects(point: Any) -> bool:
    vector = getattr(point, "vector", None)
    values = vector.values() if isinstance(vector, dict) else [vector]
    return any(isinstance(v, _INFERENCE_TYPES) for v in values)


def valid_id(pid: Any) -> bool:
    """An unsigned 64-bit integer or a UUID: what Qdrant takes as a point id."""
    if isinstance(pid, bool) or pid is None:
        return False
    if isinstance(pid, int):
        return 0 <= pid < 2**64
    try:
        uuid.UUID(str(pid))
    except ValueError:
        return False
    return True
