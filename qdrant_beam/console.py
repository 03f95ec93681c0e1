"""The ``qdrant-beam`` console script: start-up and exit tuned for a short-lived process.

Beam and qdrant-client create about a million objects at import (qdrant-client rebuilds
hundreds of pydantic models), and every one of them lives until the process ends. With the
collector running, imports trigger repeated full collections over that growing heap; paused
during the imports and then frozen (``gc.freeze``: moved out of every later collection), the
same start-up is about 0.4 s shorter, and the job's own collections skip those objects too.
The thresholds stay the interpreter's: a job must collect young cycles promptly, since
httpx 0.28 leaves every response in a cycle with its stream, and that cycle holds the request
body (an upsert's megabyte) until a collection runs.
The exit is frozen the same way: interpreter shutdown would otherwise collect them all once
more (0.6 s measured). Clients and files are closed by the job itself before that point.
"""

from __future__ import annotations

import gc
import sys


def run() -> None:
    """Console-script entry: ``qdrant_beam.pipelines.cli.main`` with tuned start and exit."""
    gc.disable()
    try:
        from qdrant_beam.pipelines.cli import main
    finally:
        gc.enable()
    gc.freeze()
    code = main()
    gc.freeze()
    sys.exit(code)
