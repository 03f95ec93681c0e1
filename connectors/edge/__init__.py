"""Qdrant's own engine in this process (qdrant-edge), as qdrant-beam's embedded default."""

from qdrant_beam.connectors.edge.client import EdgeClient
from qdrant_beam.connectors.edge.folder import kind

__all__ = ["EdgeClient", "kind"]
