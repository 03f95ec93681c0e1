"""Plug ``WriteToQdrant`` into Beam's RAG ingestion: a ``VectorDatabaseWriteConfig``.

Usage::

    items | VectorDatabaseWriteTransform(QdrantVectorWriteConfig(target, schema=schema))

It takes ``EmbeddableItem``s (Beam's chunks with dense and/or sparse embeddings) and, as a
convenience, ``PointStruct``s unchanged. Item ids follow this package's id rule (integers and
UUIDs kept, anything else a deterministic UUIDv5), so re-runs overwrite.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import apache_beam as beam
from apache_beam.ml.rag.ingestion.base import VectorDatabaseWriteConfig
from apache_beam.pvalue import PCollection
from qdrant_client import models

from qdrant_beam.connectors.collection import CollectionSchema
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.write import WriteOutputs, WriteToQdrant
from qdrant_beam.transforms.mapping import point_id
from qdrant_beam.transforms.outputs import AnnotatedTransform
from qdrant_beam.transforms.spec import DEFAULT_ID_NAMESPACE

__all__ = ["QdrantVectorWriteConfig"]


@dataclasses.dataclass
class QdrantVectorWriteConfig(VectorDatabaseWriteConfig):
    """Beam RAG write config for Qdrant; ``write_kwargs`` go to ``WriteToQdrant``."""

    target: QdrantTarget
    schema: CollectionSchema
    dense_vector_name: str = "dense"
    sparse_vector_name: str = "sparse"
    content_payload_key: str | None = "content"
    id_namespace: uuid.UUID = DEFAULT_ID_NAMESPACE
    write_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_point(self, item: Any) -> models.PointStruct:
        if isinstance(item, models.PointStruct):
            return item
        embedding = item.embedding
        vector: dict[str, Any] = {}
        if embedding is not None and embedding.dense_embedding is not None:
            vector[self.dense_vector_name] = list(embedding.dense_embedding)
        if embedding is not None and embedding.sparse_embedding is not None:
            indices, values = embedding.sparse_embedding
            vector[self.sparse_vector_name] = models.SparseVector(
                indices=list(indices), values=list(values)
            )
        payload = dict(item.metadata or {})
        if self.content_payload_key and item.content.text is not None:
            payload[self.content_payload_key] = item.content.text
        pid = point_id(item.id, collection=self.schema.name, namespace=self.id_namespace)
        return models.PointStruct(id=pid, vector=vector, payload=payload or None)

    def create_write_transform(self) -> beam.PTransform:
        return _ItemsToQdrant(self)


class _ItemsToQdrant(AnnotatedTransform):
    def __init__(self, config: QdrantVectorWriteConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, pcoll: PCollection) -> WriteOutputs:
        config = self._config
        return (
            pcoll
            | "ToPoints" >> beam.Map(config.to_point)
            | "WriteToQdrant"
            >> WriteToQdrant(config.target, schema=config.schema, **config.write_kwargs)
        )
