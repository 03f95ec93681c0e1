"""``qdrant-beam upload``: hand an embedded store's collection over to a Qdrant server.

Edge shards share the server's segment format, but not its WAL format, and a server restores a
shard snapshot only with replica metadata Python cannot write; so the hand-over is an upload,
not a snapshot: the collection is created on the server from the store's own vector params and
payload indexes (or checked, if it exists), then its points are scrolled with their vectors
and payload and upserted in batches by the sink's writer (retries, bisection of rejects).
Point ids and the reindex's content hashes travel with the points, so an incremental reindex
against the server skips what was uploaded, and an interrupted upload is finished by running
it again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from qdrant_client import models

from qdrant_beam.connectors.collection import (
    CollectionSchema,
    DenseVector,
    SparseVector,
    ensure_collection,
)
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.writer import QdrantPointWriter, RetryingWriter
from qdrant_beam.io.retry import RetryPolicy

__all__ = ["UploadResult", "schema_of", "upload"]


@dataclasses.dataclass
class UploadResult:
    collection: str
    points: int
    failed: int
    status: str  # "created" or "checked"


def schema_of(client: Any, collection: str, name: str) -> CollectionSchema:
    """The schema of a stored collection, to create (or check) its copy ``name``."""
    info = client.get_collection(collection)
    params = info.config.params
    vectors = params.vectors if isinstance(params.vectors, dict) else {"": params.vectors}
    dense = {
        vector: DenseVector(
            int(p.size),
            p.distance.value if hasattr(p.distance, "value") else str(p.distance),
            p.multivector_config is not None,
        )
        for vector, p in (vectors or {}).items()
    }
    sparse = {
        vector: SparseVector("idf" if p.modifier == models.Modifier.IDF else "none")
        for vector, p in (params.sparse_vectors or {}).items()
    }
    indexes = {
        field: str(getattr(index.data_type, "value", index.data_type))
        for field, index in (getattr(info, "payload_schema", None) or {}).items()
    }
    return CollectionSchema(name, dense, sparse, indexes)


def upload(
    source: QdrantTarget,
    collection: str,
    destination: QdrantTarget,
    *,
    to_collection: str | None = None,
    batch_size: int = 256,
    policy: RetryPolicy | None = None,
    emit: Callable[[str], None] = print,
) -> UploadResult:
    """Copy ``collection`` (or the collection an alias names) from ``source`` to
    ``destination``; returns how many points landed and how many failed."""
    name = to_collection or collection
    src = source.connect()
    try:
        with destination.named_in_errors():
            dst = destination.connect()
            try:
                status = ensure_collection(dst, schema_of(src, collection, name))
                writer = RetryingWriter(
                    QdrantPointWriter(
                        dst,
                        name,
                        lock=destination.write_lock(),
                        direct_rest=destination.url is not None and not destination.prefer_grpc,
                    ),
                    policy,
                )
                written = failed = 0
                offset: Any = None
                while True:
                    records, offset = src.scroll(
                        collection,
                        limit=batch_size,
                        offset=offset,
                        with_payload=True,
                        with_vectors=True,
                    )
                    points = [
                        models.PointStruct(id=r.id, vector=r.vector or {}, payload=r.payload)
                        for r in records
                    ]
                    report = writer.write(points) if points else None
                    if report is not None:
                        written += len(report.written)
                        failed += len(report.failed)
                        for point, error, _ in report.failed[:3]:
                            emit(f"upload: point {point.id} failed: {error}")
                    if offset is None:
                        break
            finally:
                destination.release(dst)
    finally:
        source.release(src)
    return UploadResult(name, written, failed, status)
