"""Search an index built from a spec: query-side embedding, MRL prefetch, hybrid RRF fusion.

Usage::

    hits = search(client, spec, "kelp forests", vector="dense", small="dense_64", sparse="bm25")
"""

from __future__ import annotations

from typing import Any

from qdrant_client import models

from qdrant_beam.io.errors import SpecError
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.chunk_points import PARENT_FIELD
from qdrant_beam.transforms.engine import InferenceEngine
from qdrant_beam.transforms.mapping import MappedRecord
from qdrant_beam.transforms.spec import PointsSpec
from qdrant_beam.transforms.store import ModelStore

__all__ = ["QueryEmbedder", "search"]


class QueryEmbedder:
    """Embeds query text with each vector's own model, query-side where the model has one."""

    def __init__(self, spec: PointsSpec, catalog: ModelCatalog | None = None) -> None:
        self._spec = spec
        self._engine = InferenceEngine(ModelStore(catalog or spec.catalog()))

    def embed(self, vector: str, text: str) -> Any:
        if vector not in self._spec.vectors:
            raise SpecError(
                f"no vector {vector!r} in the spec; choose one of {', '.join(self._spec.vectors)}"
            )
        definition = self._spec.vectors[vector]
        if definition.text is None:
            raise SpecError(f"vector {vector!r} embeds images; query it with an image")
        options = {**definition.options, "input_type": "query"}
        query = MappedRecord(
            0, [(vector, definition.input_kind, text, definition.model, options)], None
        )
        points, failed = self._engine.resolve([query])
        if failed:
            raise SpecError(f"cannot embed the query for {vector!r}: {failed[0].message}")
        resolved = points[0].vector
        assert isinstance(resolved, dict)  # a named vector in, a named vector out
        return resolved[vector]


def search(
    client: Any,
    spec: PointsSpec,
    text: str,
    *,
    vector: str,
    small: str | None = None,
    sparse: str | None = None,
    limit: int = 5,
    prefetch_limit: int = 50,
    collection: str | None = None,
    group_by_parent: bool = False,
    embedder: QueryEmbedder | None = None,
) -> list[models.ScoredPoint]:
    """Top hits for ``text``.

    Args:
        vector: the full-size dense (or multi) vector to rank by.
        small: an MRL-truncated vector of the same model: prefetch with it, rescore on ``vector``.
        sparse: a sparse vector (e.g. BM25) to fuse with the dense ranking by RRF.
        group_by_parent: chunk points: the best chunk of each record, one hit per record.
    """
    embedder = embedder or QueryEmbedder(spec)
    name = collection or spec.collection

    def query_of(name: str) -> Any:
        embedded = embedder.embed(name, text)
        # a chunked vector is a multivector: the query is one chunk, scored by max_sim
        return [embedded] if spec.vectors[name].chunking is not None else embedded

    dense_query = query_of(vector)
    dense_prefetch = None
    if small is not None:
        dense_prefetch = models.Prefetch(query=query_of(small), using=small, limit=prefetch_limit)
    if sparse is None:
        request: dict[str, Any] = {
            "query": dense_query,
            "using": vector,
            "prefetch": dense_prefetch,
        }
    else:
        dense_branch = models.Prefetch(
            query=dense_query, using=vector, prefetch=dense_prefetch, limit=prefetch_limit
        )
        sparse_branch = models.Prefetch(
            query=embedder.embed(sparse, text), using=sparse, limit=prefetch_limit
        )
        request = {
            "prefetch": [dense_branch, sparse_branch],
            "query": models.FusionQuery(fusion=models.Fusion.RRF),
        }
    if not group_by_parent:
        return list(client.query_points(name, limit=limit, with_payload=True, **request).points)
    if spec.chunks is None:
        raise SpecError("--group-by-parent needs chunk points: a spec with a `chunks` block")
    groups = client.query_points_groups(
        name, group_by=PARENT_FIELD, limit=limit, group_size=1, with_payload=True, **request
    ).groups
    return [group.hits[0] for group in groups if group.hits]
