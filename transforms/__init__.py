"""Records to vectors: the spec, RecordsToPoints, ResolveInference and EmbedPoints."""

from qdrant_beam.io.errors import (
    InvalidImage,
    InvalidRecord,
    ModelNotFound,
    PermanentError,
    QdrantBeamError,
    SpecError,
    TransientError,
)
from qdrant_beam.transforms.catalog import LocalModel, ModelCatalog
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.embed_points import EmbedPoints
from qdrant_beam.transforms.images import ImageLimits
from qdrant_beam.transforms.metrics import METRICS_NAMESPACE
from qdrant_beam.transforms.outputs import InferenceOutputs
from qdrant_beam.transforms.prepare import FromHashedRecords, FromPoints, FromRecords, Preparation
from qdrant_beam.transforms.records_to_points import RecordsToPoints
from qdrant_beam.transforms.resolve import InferenceConfig, ResolveInference
from qdrant_beam.transforms.spec import PayloadSpec, PointsSpec, VectorSpec, load_spec

__all__ = [
    "DEAD_LETTERS",
    "METRICS_NAMESPACE",
    "EmbedPoints",
    "FailedRecord",
    "FromHashedRecords",
    "FromPoints",
    "FromRecords",
    "ImageLimits",
    "InferenceConfig",
    "InferenceOutputs",
    "InvalidImage",
    "InvalidRecord",
    "LocalModel",
    "ModelCatalog",
    "ModelNotFound",
    "PayloadSpec",
    "PermanentError",
    "PointsSpec",
    "Preparation",
    "QdrantBeamError",
    "RecordsToPoints",
    "ResolveInference",
    "SpecError",
    "Stage",
    "TransientError",
    "VectorSpec",
    "load_spec",
]
