"""Loopback fakes of the services the package talks to, for tests and benchmarks.

* ``fakes.http``: the shared plumbing (threaded loopback HTTP server, connection tracking,
  in-flight counting, answering and dropping, the request log, an in-process
  ``httpx.MockTransport`` of the same handler, a child-process runner).
* ``fakes.faults``: the one fault model (``Fault``, ``Faults``, the seeded draw).
* ``fakes.qdrant`` (+ ``fakes.qdrant_api``): Qdrant's REST API over qdrant-client's local mode,
  upserted points checked first by Qdrant's engine (``fakes.qdrant_engine``).
* ``fakes.qdrant_grpc``: Qdrant's gRPC API, sharing the REST fake's data.
* ``fakes.providers`` (+ ``fakes.provider_apis`` and one module per flavour): the embedding
  APIs of OpenAI, OpenRouter, Cohere and Jina.

``tests/`` is on ``sys.path`` under pytest, so tests import ``from fakes.qdrant import ...``.
"""
