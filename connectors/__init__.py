"""The Qdrant sink: targets, collection checks, batched writes with backpressure and retries."""

from qdrant_beam.connectors.collection import (
    CollectionSchema,
    DenseVector,
    SchemaMismatch,
    SparseVector,
    ensure_collection,
)
from qdrant_beam.connectors.rag import QdrantVectorWriteConfig
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.write import (
    METRICS_NAMESPACE,
    WriteBatchResult,
    WriteConfig,
    WriteOutputs,
    WriteToQdrant,
)
from qdrant_beam.io.clock import Clock, FakeClock, SystemClock
from qdrant_beam.io.retry import RetryPolicy
from qdrant_beam.io.window import AimdWindow, Concurrency

__all__ = [
    "METRICS_NAMESPACE",
    "AimdWindow",
    "Clock",
    "CollectionSchema",
    "Concurrency",
    "DenseVector",
    "FakeClock",
    "QdrantTarget",
    "QdrantVectorWriteConfig",
    "RetryPolicy",
    "SchemaMismatch",
    "SparseVector",
    "SystemClock",
    "WriteBatchResult",
    "WriteConfig",
    "WriteOutputs",
    "WriteToQdrant",
    "ensure_collection",
]
