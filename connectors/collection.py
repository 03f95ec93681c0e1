"""Collection management before any write: create from the spec, or check it matches.

A mismatch raises ``SchemaMismatch`` naming the vector, the property, and both values, at
pipeline construction time, before inference or writes start.

Usage::

    schema = CollectionSchema.from_spec(spec)
    ensure_collection(client, schema)    # "created" or "checked"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from qdrant_client import models

from qdrant_beam.connectors.qdrant_errors import translate_errors
from qdrant_beam.io.errors import SpecError
from qdrant_beam.transforms.backends.registry import VectorKind
from qdrant_beam.transforms.chunk_points import INDEX_FIELD, PARENT_FIELD
from qdrant_beam.transforms.spec import PointsSpec

__all__ = ["CollectionSchema", "DenseVector", "SchemaMismatch", "SparseVector", "ensure_collection"]

_DISTANCE = {
    "Cosine": models.Distance.COSINE,
    "Dot": models.Distance.DOT,
    "Euclid": models.Distance.EUCLID,
    "Manhattan": models.Distance.MANHATTAN,
}


class SchemaMismatch(SpecError):
    """The existing collection does not match what the spec writes."""


@dataclasses.dataclass(frozen=True)
class DenseVector:
    size: int
    distance: str = "Cosine"
    multivector: bool = False
    on_disk: bool | None = None

    def params(self) -> models.VectorParams:
        return models.VectorParams(
            size=self.size,
            distance=_DISTANCE[self.distance],
            on_disk=self.on_disk,
            multivector_config=(
                models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
                if self.multivector
                else None
            ),
        )


@dataclasses.dataclass(frozen=True)
class SparseVector:
    modifier: str = "none"
    on_disk: bool | None = None

    def params(self) -> models.SparseVectorParams:
        return models.SparseVectorParams(
            modifier=models.Modifier.IDF if self.modifier == "idf" else None,
            index=models.SparseIndexParams(on_disk=self.on_disk) if self.on_disk else None,
        )


@dataclasses.dataclass(frozen=True)
class CollectionSchema:
    """What a collection must hold for the points a job writes."""

    name: str
    dense: Mapping[str, DenseVector] = dataclasses.field(default_factory=dict)
    sparse: Mapping[str, SparseVector] = dataclasses.field(default_factory=dict)
    payload_indexes: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: PointsSpec, name: str | None = None) -> CollectionSchema:
        dense: dict[str, DenseVector] = {}
        sparse: dict[str, SparseVector] = {}
        for vector_name, vector in spec.vectors.items():
            info = spec.model_info(vector_name)
            if info.vector_kind is VectorKind.SPARSE:
                modifier = spec.sparse_modifier(vector_name) or "none"
                sparse[vector_name] = SparseVector(modifier, vector.on_disk)
                continue
            size = spec.vector_size(vector_name)
            if size is None:
                raise SpecError(
                    f"vectors.{vector_name}: the size of model {info.name!r} is unknown; "
                    f"declare `dim` under `models:`"
                )
            multi = spec.is_multivector(vector_name)
            dense[vector_name] = DenseVector(size, vector.distance, multi, vector.on_disk)
        indexes = dict(spec.payload_indexes)
        if spec.chunks is not None:  # stale chunks are found by parent and index
            indexes.setdefault(PARENT_FIELD, "keyword")
            indexes.setdefault(INDEX_FIELD, "integer")
        return cls(name or spec.collection, dense, sparse, indexes)

    def create(self, client: Any) -> None:
        with translate_errors():
            client.create_collection(
                self.name,
                vectors_config={n: v.params() for n, v in self.dense.items()},
                sparse_vectors_config={n: v.params() for n, v in self.sparse.items()} or None,
            )
        self.create_indexes(client)

    def create_indexes(self, client: Any) -> None:
        for field, schema in self.payload_indexes.items():
            with translate_errors():
                client.create_payload_index(
                    self.name, field_name=field, field_schema=models.PayloadSchemaType(schema)
                )

    def check(self, client: Any) -> None:
        """Raises ``SchemaMismatch`` listing every difference."""
        with translate_errors():
            info = client.get_collection(self.name)
        params = info.config.params
        vectors = params.vectors
        if isinstance(vectors, models.VectorParams):
            vectors = {"": vectors}
        vectors = vectors or {}
        sparse = params.sparse_vectors or {}
        problems: list[str] = []
        for name, want in self.dense.items():
            have = vectors.get(name)
            if have is None:
                where = "a sparse vector" if name in sparse else "missing"
                problems.append(
                    f"vector {name!r}: the spec writes a dense vector, Qdrant has {where}"
                )
                continue
            problems += _diff_dense(name, want, have)
        for name, want_sparse in self.sparse.items():
            have_sparse = sparse.get(name)
            if have_sparse is None:
                where = "a dense vector" if name in vectors else "missing"
                problems.append(
                    f"vector {name!r}: the spec writes a sparse vector, Qdrant has {where}"
                )
                continue
            have_modifier = "idf" if have_sparse.modifier == models.Modifier.IDF else "none"
            if have_modifier != want_sparse.modifier:
                problems.append(
                    f"vector {name!r}: sparse modifier is {want_sparse.modifier!r} in the spec "
                    f"but {have_modifier!r} in Qdrant"
                )
        if problems:
            raise SchemaMismatch(
                f"collection {self.name!r} does not match the spec:\n  "
                + "\n  ".join(problems)
                + "\nFix the spec, or write to a new collection (e.g. `qdrant-beam reindex "
                "--mode rebuild`)."
            )


def _diff_dense(name: str, want: DenseVector, have: models.VectorParams) -> list[str]:
    problems = []
    if have.size != want.size:
        problems.append(
            f"vector {name!r}: size is {want.size} in the spec but {have.size} in Qdrant"
        )
    have_distance = have.distance.value if hasattr(have.distance, "value") else str(have.distance)
    if have_distance != want.distance:
        problems.append(
            f"vector {name!r}: distance is {want.distance} in the spec "
            f"but {have_distance} in Qdrant"
        )
    have_multi = have.multivector_config is not None
    if have_multi != want.multivector:
        describe = {True: "a multivector (max_sim)", False: "a single vector"}
        problems.append(
            f"vector {name!r}: the spec writes {describe[want.multivector]} but Qdrant holds "
            f"{describe[have_multi]}"
        )
    return problems


def ensure_collection(client: Any, schema: CollectionSchema, *, create: bool = True) -> str:
    """Create the collection when missing (if ``create``), else check it; returns which."""
    with translate_errors():
        exists = client.collection_exists(schema.name)
    if not exists:
        if not create:
            raise SchemaMismatch(f"collection {schema.name!r} does not exist and create=False")
        schema.create(client)
        return "created"
    schema.check(client)
    schema.create_indexes(client)
    return "checked"
