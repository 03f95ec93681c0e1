"""``python -m qdrant_beam``: the same as the ``qdrant-beam`` command."""

from qdrant_beam.console import run

run()
