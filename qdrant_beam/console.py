"""The ``qdrant-beam`` console script: start-up, logging and exit tuned for a short-lived process.

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

Logging is set up before Beam is imported, with a filter for what a user of the command cannot
act on (see ``KnownNoise``).
"""

from __future__ import annotations

import gc
import logging
import sys

__all__ = ["KnownNoise", "configure_logging", "run"]


class KnownNoise(logging.Filter):
    """Drops two kinds of log record from the command's output.

    * Beam's ``apitools not found`` warning, logged at every ``import apache_beam`` without the
      GCP extras; nothing in qdrant-beam uses BigQuery.
    * A runner's traceback of an error the command reports itself: any ``QdrantBeamError``
      (a refused API key, a missing model) ends the run with one ``error:`` line, so Beam's
      50-line traceback of the same error only hides it. Other errors keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "root" and str(record.msg).startswith("apitools not found"):
            return False
        return not (record.exc_info and _reported_by_us(record.exc_info[1]))


def _reported_by_us(error: BaseException | None) -> bool:
    from qdrant_beam.io.errors import QdrantBeamError

    seen = 0
    while error is not None and seen < 10:  # the error, or what it was raised from
        if isinstance(error, QdrantBeamError):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def configure_logging(level: int = logging.WARNING) -> None:
    """Warnings and errors to stderr, without ``KnownNoise``; a no-op if already set up."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    handler.addFilter(KnownNoise())
    root.addHandler(handler)
    root.setLevel(level)


def run() -> None:
    """Console-script entry: ``qdrant_beam.pipelines.cli.main`` with tuned start and exit."""
    configure_logging()
    gc.disable()
    try:
        from qdrant_beam.pipelines.cli import main
    finally:
        gc.enable()
    gc.freeze()
    code = main()
    gc.freeze()
    sys.exit(code)
