"""The lowest layer: the error taxonomy and pure I/O policy shared by every client here.

``errors`` (what failed, and whether to retry), ``retry`` (the policy and the one retry loop),
``window`` (concurrency settings and the AIMD window), ``pacing`` (when a window shared by
many workers sends), ``limiter`` (requests in flight),
``clock`` (injectable time) and ``tls`` (httpx's TLS context, built once). It imports nothing
else of this package; ``transforms``, ``connectors`` and ``pipelines`` all import it.
"""

from qdrant_beam.io.clock import Clock, FakeClock, SystemClock
from qdrant_beam.io.limiter import InFlight, Limiter
from qdrant_beam.io.pacing import Pacer
from qdrant_beam.io.retry import Retrying, RetryPolicy
from qdrant_beam.io.window import AimdWindow, Concurrency

__all__ = [
    "AimdWindow",
    "Clock",
    "Concurrency",
    "FakeClock",
    "InFlight",
    "Limiter",
    "Pacer",
    "RetryPolicy",
    "Retrying",
    "SystemClock",
]
