"""``qdrant_client.models`` to qdrant-edge and back: what the edge client speaks at each end.

Edge's Python API is beta and has sharp edges these conversions absorb: ``Fusion.Rrf`` needs
``k`` (Qdrant's default is 2), UUID ids come back as ``uuid.UUID``, ``retrieve`` takes both
flags positionally, and a boolean ``MatchValue`` never matches (refused here).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import qdrant_edge as edge
from qdrant_client import models

from qdrant_beam.connectors.qdrant_errors import RejectedPoints
from qdrant_beam.io.errors import SpecError

__all__ = [
    "edge_config",
    "edge_filter",
    "edge_point",
    "edge_query",
    "payload_selector",
    "qdrant_id",
    "qdrant_vector",
    "record",
    "scored_point",
    "vector_params",
]

#: Qdrant's (server and qdrant-client) RRF constant.
RRF_K = 2

_DISTANCE = {
    models.Distance.COSINE: edge.Distance.Cosine,
    models.Distance.DOT: edge.Distance.Dot,
    models.Distance.EUCLID: edge.Distance.Euclid,
    models.Distance.MANHATTAN: edge.Distance.Manhattan,
}
_DISTANCE_NAMES = {"Cosine": "Cosine", "Dot": "Dot", "Euclid": "Euclid", "Manhattan": "Manhattan"}
_SCHEMA = {
    "keyword": edge.PayloadSchemaType.Keyword,
    "integer": edge.PayloadSchemaType.Integer,
    "float": edge.PayloadSchemaType.Float,
    "bool": edge.PayloadSchemaType.Bool,
    "geo": edge.PayloadSchemaType.Geo,
    "datetime": edge.PayloadSchemaType.Datetime,
    "text": edge.PayloadSchemaType.Text,
    "uuid": edge.PayloadSchemaType.Uuid,
}


# -- collections ------------------------------------------------------------------------------
def edge_config(
    vectors: Mapping[str, models.VectorParams],
    sparse: Mapping[str, models.SparseVectorParams] | None,
) -> edge.EdgeConfig:
    dense = {
        name: edge.EdgeVectorParams(
            size=params.size,
            distance=_DISTANCE[models.Distance(params.distance)],
            on_disk=params.on_disk,
            multivector_config=(
                edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim)
                if params.multivector_config is not None
                else None
            ),
        )
        for name, params in vectors.items()
    }
    sparse_params = {
        name: edge.EdgeSparseVectorParams(
            modifier=edge.Modifier.Idf if params.modifier == models.Modifier.IDF else None,
            on_disk=params.index.on_disk if params.index is not None else None,
        )
        for name, params in (sparse or {}).items()
    }
    return edge.EdgeConfig(vectors=dense or None, sparse_vectors=sparse_params or None)


def vector_params(
    stored: Mapping[str, Any],
) -> tuple[dict[str, models.VectorParams], dict[str, models.SparseVectorParams]]:
    """A shard's ``edge_config.json`` as qdrant-client's collection params."""
    dense = {
        name: models.VectorParams(
            size=int(params["size"]),
            distance=models.Distance(_DISTANCE_NAMES[params["distance"]]),
            multivector_config=(
                models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
                if params.get("multivector_config")
                else None
            ),
        )
        for name, params in (stored.get("vectors") or {}).items()
    }
    sparse = {
        name: models.SparseVectorParams(
            modifier=models.Modifier.IDF if (params or {}).get("modifier") == "idf" else None
        )
        for name, params in (stored.get("sparse_vectors") or {}).items()
    }
    return dense, sparse


def qdrant_schema(schema: Any) -> models.PayloadSchemaType:
    """An edge payload index type as qdrant-client's."""
    return next(models.PayloadSchemaType(k) for k, v in _SCHEMA.items() if v == schema)


def payload_schema(schema: Any) -> Any:
    name = schema.value if isinstance(schema, models.PayloadSchemaType) else str(schema)
    if name not in _SCHEMA:
        raise SpecError(f"payload index type {name!r} is not supported by the embedded engine")
    return _SCHEMA[name]


# -- points -----------------------------------------------------------------------------------
def edge_point(point: models.PointStruct) -> edge.Point:
    """A point as edge takes it; a sparse vector whose indices and values differ in length is
    refused here (edge panics on one, and the panic poisons that id until the shard reopens)."""
    vector = point.vector
    if isinstance(vector, dict):
        converted: Any = {name: _edge_vector(name, v) for name, v in vector.items()}
    else:
        converted = _edge_vector("", vector)
    try:
        return edge.Point(point.id, converted, point.payload)
    except (TypeError, ValueError, OverflowError) as exc:
        raise RejectedPoints(f"Wrong input: point {point.id!r}: {_first_line(exc)}", 400) from None


def _edge_vector(name: str, vector: Any) -> Any:
    if isinstance(vector, models.SparseVector):
        if len(vector.indices) != len(vector.values):
            raise RejectedPoints(
                f"Wrong input: sparse vector {name!r} has {len(vector.indices)} indices and "
                f"{len(vector.values)} values",
                400,
            )
        return edge.SparseVector(indices=list(vector.indices), values=list(vector.values))
    if isinstance(vector, (models.Document, models.Image, models.InferenceObject)):
        raise RejectedPoints(
            f"Wrong input: vector {name!r} is an inference object; the embedded engine takes "
            f"vectors only",
            400,
        )
    return vector


def qdrant_id(point_id: Any) -> int | str:
    return str(point_id) if isinstance(point_id, uuid.UUID) else point_id


def qdrant_vector(vector: Any) -> Any:
    if vector is None:
        return None
    if isinstance(vector, dict):
        return {name: qdrant_vector(v) for name, v in vector.items()}
    if isinstance(vector, edge.SparseVector):
        return models.SparseVector(indices=list(vector.indices), values=list(vector.values))
    return vector


def record(found: Any) -> models.Record:
    return models.Record(
        id=qdrant_id(found.id), payload=found.payload, vector=qdrant_vector(found.vector)
    )


def scored_point(found: Any) -> models.ScoredPoint:
    return models.ScoredPoint(
        id=qdrant_id(found.id),
        version=found.version or 0,
        score=found.score,
        payload=found.payload,
        vector=qdrant_vector(found.vector),
    )


def payload_selector(with_payload: Any) -> Any:
    if isinstance(with_payload, models.PayloadSelectorInclude):
        return edge.PayloadSelector.Include(list(with_payload.include))
    if isinstance(with_payload, models.PayloadSelectorExclude):
        return edge.PayloadSelector.Exclude(list(with_payload.exclude))
    if isinstance(with_payload, (list, tuple)):
        return list(with_payload)
    return bool(with_payload) if with_payload is not None else True


# -- queries ----------------------------------------------------------------------------------
def edge_query(query: Any, using: str | None) -> Any:
    """A qdrant-client query (a vector, ``NearestQuery`` or ``FusionQuery``) as edge's."""
    if query is None:
        return None
    if isinstance(query, models.FusionQuery):
        if query.fusion == models.Fusion.RRF:
            return edge.Fusion.Rrf(k=RRF_K)
        return edge.Fusion.Dbsf()
    if isinstance(query, models.RrfQuery):
        return edge.Fusion.Rrf(k=query.rrf.k if query.rrf.k is not None else RRF_K)
    if isinstance(query, models.NearestQuery):
        query = query.nearest
    if isinstance(query, models.SparseVector):
        query = edge.SparseVector(indices=list(query.indices), values=list(query.values))
    return edge.Query.Nearest(query, using=using)


def edge_prefetch(prefetch: models.Prefetch) -> edge.Prefetch:
    inner = prefetch.prefetch
    nested = (
        [edge_prefetch(p) for p in (inner if isinstance(inner, list) else [inner])]
        if inner
        else None
    )
    return edge.Prefetch(
        limit=prefetch.limit or 10,
        query=edge_query(prefetch.query, prefetch.using),
        prefetches=nested,
        filter=edge_filter(prefetch.filter),
        score_threshold=prefetch.score_threshold,
    )


def prefetches(prefetch: models.Prefetch | Sequence[models.Prefetch] | None) -> list[Any] | None:
    if prefetch is None:
        return None
    items: Sequence[models.Prefetch] = (
        prefetch if isinstance(prefetch, (list, tuple)) else [prefetch]  # type: ignore[list-item]
    )
    return [edge_prefetch(p) for p in items]


def edge_filter(flt: models.Filter | None) -> edge.Filter | None:
    """The conditions this package writes (ids, keyword/integer matches, ranges)."""
    if flt is None:
        return None

    def conditions(items: Any) -> list[Any] | None:
        if items is None:
            return None
        return [_condition(c) for c in (items if isinstance(items, list) else [items])]

    return edge.Filter(
        must=conditions(flt.must), should=conditions(flt.should), must_not=conditions(flt.must_not)
    )


def _condition(condition: Any) -> Any:
    if isinstance(condition, models.HasIdCondition):
        return edge.HasIdCondition({qdrant_id(i) for i in condition.has_id})
    if isinstance(condition, models.Filter):
        return edge_filter(condition)
    if isinstance(condition, models.FieldCondition):
        return edge.FieldCondition(
            condition.key, match=_match(condition.match), range=_range(condition.range)
        )
    raise SpecError(f"the embedded engine does not take {type(condition).__name__} conditions")


def _match(match: Any) -> Any:
    if match is None:
        return None
    if isinstance(match, models.MatchValue):
        if isinstance(match.value, bool):
            raise SpecError("the embedded engine cannot match booleans; store the flag as text")
        return edge.MatchValue(match.value)
    if isinstance(match, models.MatchAny):
        return edge.MatchAny(list(match.any))  # type: ignore[arg-type]
    if isinstance(match, models.MatchExcept):
        return edge.MatchExcept(list(match.except_))  # type: ignore[arg-type]
    raise SpecError(f"the embedded engine does not take {type(match).__name__} matches here")


def _range(rng: Any) -> Any:
    if rng is None:
        return None
    return edge.RangeFloat(gte=rng.gte, gt=rng.gt, lte=rng.lte, lt=rng.lt)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
