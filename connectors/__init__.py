"""The Qdrant sink: targets, collection checks, batched writes with backpressure and retries."""

from qdrant_beam.connectors.clock import Clock, FakeClock, SystemClock
from qdrant_beam.connectors.collection import (
    CollectionSchema,
    DenseVector,
    SchemaMismatch,
    SparseVector,
    ensure_collection,
)
from qdrant_beam.connectors.rag import QdrantVectorWriteConfig
from qdrant_beam.connectors.retry import RetryPolicy
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.window import AimdWindow
from qdrant_beam.connectors.write import (
    METRICS_NAMESPACE,
    WriteBatchResult,
    WriteOutputs,
    WriteToQdrant,
)

__all__ = [
    "METRICS_NAMESPACE",
    "AimdWindow",
    "Clock",
    "CollectionSchema",
    "DenseVector",
    "FakeClock",
    "QdrantTarget",
    "QdrantVectorWriteConfig",
    "RetryPolicy",
    "SchemaMismatch",
    "SparseVector",
    "SystemClock",
    "WriteBatchResult",
    "WriteOutputs",
    "WriteToQdrant",
    "ensure_collection",
]
