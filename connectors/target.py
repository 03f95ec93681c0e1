"""Where points go: a Qdrant server (REST or gRPC), or an embedded Qdrant in this process.

A target is config, safe to pickle into the pipeline graph: the API key is never stored in
it, only the name of the environment variable that holds it, read on the worker when the
client is built (``connect``).

Usage::

    QdrantTarget(url="https://xyz.cloud.qdrant.io:6333", api_key_env="QDRANT_API_KEY")
    QdrantTarget(path="/data/qdrant")      # embedded (qdrant-edge), one process only
    QdrantTarget(path="/data/q", engine="local")   # qdrant-client's local mode
    QdrantTarget(location=":memory:")      # local mode in memory, in this process only
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qdrant_beam.connectors import embedded
from qdrant_beam.io.errors import SpecError, TransientError, Unavailable
from qdrant_beam.io.tls import httpx_verify

__all__ = ["QdrantTarget"]

#: Runners whose workers are other processes than the one that builds the pipeline.
_MULTI_PROCESS_RUNNERS = ("Dataflow", "Flink", "Spark", "Portable", "Prism")


class QdrantTarget(BaseModel):
    """How to reach Qdrant; exactly one of ``url``, ``path`` or ``location`` is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(None, description="Server URL, e.g. http://localhost:6333.")
    path: str | None = Field(None, description="Folder of an embedded Qdrant.")
    location: str | None = Field(None, description="':memory:': local mode in memory.")
    engine: embedded.Engine = Field(
        "auto",
        description="Embedded engine of a path: 'edge' (Qdrant's own), 'local' (qdrant-client's "
        "local mode), or 'auto' (local for a folder local mode wrote, else edge).",
    )
    prefer_grpc: bool = Field(False, description="Talk gRPC (port grpc_port) instead of REST.")
    grpc_port: int = Field(6334, description="gRPC port of the server.")
    api_key_env: str | None = Field(
        "QDRANT_API_KEY", description="Environment variable holding the API key (read on workers)."
    )
    timeout_s: int = Field(30, ge=1, description="Per-request timeout, whole seconds.")
    https: bool | None = Field(None, description="Force TLS on or off (default: from the URL).")
    verify_tls: bool = Field(True, description="Verify the server certificate.")

    @model_validator(mode="after")
    def _one_target(self) -> QdrantTarget:
        given = [name for name in ("url", "path", "location") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of url, path or location (got {given or 'none'})")
        if self.location is not None and self.location != ":memory:":
            raise ValueError(f"location must be ':memory:', got {self.location!r}; use url=")
        return self

    @property
    def is_local(self) -> bool:
        return self.url is None

    @property
    def store_key(self) -> str:
        return self.path or embedded.MEMORY

    def embedded_engine(self) -> str | None:
        """``edge`` or ``local`` for an embedded target, ``None`` for a server."""
        return embedded.engine_for(self.path, self.engine) if self.is_local else None

    def release(self, client: Any) -> None:
        """Give back a client from ``connect``: closes server clients and unused local folders."""
        if self.is_local:
            embedded.release(self.store_key)
        else:
            client.close()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep an embedded folder open across a whole local job.

        Every stage connects and releases on its own; without a holder the folder would be
        closed and reopened (reloading every stored point) between them. A no-op for servers.
        Only hold it when the workers run in this process: a holder locks out other processes.
        """
        if not self.is_local:
            yield
            return
        client = self.connect()
        try:
            yield
        finally:
            self.release(client)

    def write_lock(self) -> threading.Lock | None:
        """A lock that serialises calls, for local mode, which is not thread-safe."""
        if self.embedded_engine() != "local":
            return None
        return embedded.write_lock(self.store_key)

    @contextlib.contextmanager
    def named_in_errors(self) -> Iterator[None]:
        """Transient failures inside (connection refused, timeouts, 5xx) name this target,
        so a user sees which Qdrant could not be reached: ``cannot reach Qdrant at ...``."""
        try:
            yield
        except TransientError as exc:
            raise Unavailable(f"cannot reach Qdrant at {self.describe()}: {exc}") from exc

    def check_runner(self, options: Any) -> None:
        """Embedded storage is one process per folder: refuse runners that fork workers."""
        if not self.is_local:
            return
        from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

        runner = str(options.view_as(StandardOptions).runner or "")
        mode = options.view_as(DirectOptions).direct_running_mode
        workers = options.view_as(DirectOptions).direct_num_workers
        multi = any(name in runner for name in _MULTI_PROCESS_RUNNERS) or (
            mode == "multi_processing" and workers != 1
        )
        if multi:
            raise SpecError(
                f"the embedded Qdrant ({self.path or ':memory:'}) lives in one process, but "
                f"runner {runner or 'direct'} ({mode}) runs workers in several processes. Write "
                f"to a Qdrant server instead (QdrantTarget(url=...)), or run on FnApiRunner or "
                f"DirectRunner with --direct_running_mode=in_memory or multi_threading."
            )

    def describe(self) -> str:
        """For logs and display data: never includes the key."""
        if self.url:
            return f"{self.url} ({'gRPC' if self.prefer_grpc else 'REST'})"
        engine = "qdrant-edge" if self.embedded_engine() == "edge" else "local mode"
        return f"embedded {self.path or self.location} ({engine})"

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        return os.environ.get(self.api_key_env) or None

    def connect(self, **overrides: Any) -> Any:
        """A client (``QdrantClient``, or ``EdgeClient`` for the embedded engine); call on the
        worker (``DoFn.setup``), never at graph time."""
        from qdrant_client import QdrantClient

        if self.is_local:
            return embedded.acquire(self.store_key, self.engine)
        kwargs: dict[str, Any] = {
            "url": self.url,
            "prefer_grpc": self.prefer_grpc,
            "grpc_port": self.grpc_port,
            "api_key": self.api_key(),
            "timeout": self.timeout_s,
            "check_compatibility": False,
        }
        if self.https is not None:
            kwargs["https"] = self.https
        kwargs["verify"] = self._verify()
        kwargs.update(overrides)
        return QdrantClient(**kwargs)

    def _verify(self) -> Any:
        """httpx ``verify`` for the REST client: no CA bundle when no TLS is spoken."""
        if self.https is False:
            return False
        if self.https:
            return httpx_verify(None, verify=self.verify_tls)
        return httpx_verify(self.url, verify=self.verify_tls)
