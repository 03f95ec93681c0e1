"""Qdrant's own engine checks every point the fake stores (``fakes.qdrant_api``).

The fake keeps its data in qdrant-client's local mode (the answers' shapes are qdrant-client's
models, aliases and queries are complete there), but local mode is a Python re-implementation
whose messages differ from a server's: a wrong dimension reads ``"... got 3 for vector 'a'"``
where Qdrant says ``"Vector dimension error: expected dim: 4, got 3"``, and a dense value for
a sparse vector is ``"Conversion between sparse and regular vectors failed"`` where Qdrant
says ``"Wrong usage of sparse vectors"``.  So each collection also gets a qdrant-edge shard
(Qdrant's segments, the server's validation) in a private folder, and a batch is upserted
there first: what the engine refuses is answered 400 with the engine's message, before local
mode sees it.  Local mode's own checks still run afterwards (REST-level ones such as unique
sparse indices, which the engine does not make).
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from qdrant_beam.connectors.edge.client import EdgeClient
from qdrant_beam.connectors.qdrant_errors import RejectedPoints

__all__ = ["EngineCheck"]


class EngineCheck:
    """One edge shard per collection of the fake, created and dropped with it."""

    def __init__(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="qdrant-fake-engine-")
        self._engine = EdgeClient(self._folder)

    def create(self, name: str, vectors: Any, sparse: Any) -> None:
        """Mirror a created collection (``vectors_config``, ``sparse_vectors_config``)."""
        if self._engine.collection_exists(name):
            self._engine.delete_collection(name)
        self._engine.create_collection(name, vectors_config=vectors, sparse_vectors_config=sparse)

    def drop(self, name: str) -> None:
        self._engine.delete_collection(name)

    def check(self, name: str, points: Any) -> str | None:
        """The engine's message if it refuses ``points`` (a list of ``PointStruct``), else
        ``None``.  A collection the engine has no shard for (made before this check existed,
        or through ``.local`` directly) is not checked."""
        if not isinstance(points, list) or not self._engine.collection_exists(name):
            return None
        try:
            self._engine.upsert(name, points)
        except RejectedPoints as refused:
            return str(refused)
        return None

    def close(self) -> None:
        self._engine.close()
        shutil.rmtree(self._folder, ignore_errors=True)
