"""Jobs and the ``qdrant-beam`` command line."""
