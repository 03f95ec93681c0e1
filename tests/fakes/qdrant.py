"""A small Qdrant REST test server backed by qdrant-client's local mode, with fault injection.

There is no Qdrant binary in the test environment, so this module speaks enough of Qdrant's REST
API for a real ``qdrant_client.QdrantClient(url=server.url)`` (REST, not gRPC) to create
collections, upsert, read back, delete and alias, while a test injects the failures a sink has to
survive (``fakes.faults``: 429 with ``Retry-After``, 5xx, latency, connection resets, timeouts, a
concurrency cap, "applied but answered with an error", a scripted queue of exact outcomes).

Usage::

    with QdrantTestServer() as server:
        client = server.client(timeout=5)          # QdrantClient(url=..., no version check)
        ...
        server.faults = Faults(error_rate=0.2, seed=7)      # 20 % of upserts fail with 429/5xx
        server.push_script(429, 503, None, Fault(500, apply=True))
        server.stats.points_upserted, server.max_concurrent_seen

    # in process, no socket (request shapes, error bodies):
    client = server.client(transport=server.transport())

API (thread-safe; the lifecycle, faults, concurrency and log are ``fakes.http.LoopbackServer``'s)::

    QdrantTestServer(*, host="127.0.0.1", port=0, path=None, store=True,
                     validate_no_store=False, api_key=None, read_only_api_key=None,
                     version=None, faults=None, request_log_size=10_000,
                     gate_timeout_s=30.0, drain_timeout_s=5.0, inference=None)
        .start() -> self   .stop() (HTTP only; data is kept, start() rebinds the same port)
        .close()  stop() and close the backing local client      with QdrantTestServer(): ...
        .reset()  drop all collections / aliases, default Faults, zero stats
        .url .host .port .api_key .version   .transport() -> httpx.MockTransport
        .faults .push_script(*items) .script_remaining .pause() .resume()
        .wait_for_in_flight(n, timeout=5.0) .in_flight .max_concurrent_seen
        .stats -> Stats (a snapshot)   .reset_stats() (also clears the request log)
        .requests -> list[RequestRecord]   .payload_indexes -> {collection: {field: schema}}
        .local -> the backing QdrantClient (local mode); use it under ``with server.lock:``
        .engine -> fakes.qdrant_engine.EngineCheck: Qdrant's engine checks upserted points
        .client(**kwargs) -> QdrantClient(url=..., check_compatibility=False, api_key=...)

Faults (see ``fakes.faults``): the request kinds are ``KINDS`` (route names such as
``"upsert"``, ``"count"``, ``"root"``); the default scope is ``"upsert"``.  A ``reset`` sends
the status line, headers and the first bytes of a 200 body before the RST; 502 answers carry an
HTML body like a proxy's, 429 / 500 / 503 Qdrant's JSON error body.  ``in_flight`` counts every
request being served; the cap applies to in-scope ones.

Endpoints (paths, methods and query params as used by ``qdrant_client/http/api/*.py``; the
handlers are in ``fakes.qdrant_api``)::

    GET    /   /healthz  /livez  /readyz
    GET    /collections                        GET /aliases
    GET    /collections/{name}                 (config.params.vectors / sparse_vectors, ...)
    GET    /collections/{name}/exists
    PUT    /collections/{name}                 PATCH /collections/{name}
    DELETE /collections/{name}
    GET    /collections/{name}/aliases         POST /collections/aliases
    PUT    /collections/{name}/points          (upsert; ?wait=, ?ordering=, ?timeout=)
    POST   /collections/{name}/points          (retrieve by ids)
    GET    /collections/{name}/points/{id}
    POST   /collections/{name}/points/scroll   POST /collections/{name}/points/count
    POST   /collections/{name}/points/delete
    POST   /collections/{name}/points/query    POST /collections/{name}/points/query/batch
    PUT    /collections/{name}/index           DELETE /collections/{name}/index/{field}

Answers are shaped like Qdrant's: ``{"result": ..., "status": "ok", "time": ...}``; errors
``{"status": {"error": "..."}, "time": ...}``.  A rejected upsert stores nothing (local mode
validates the whole batch first), so a sink can bisect a batch to find the bad point.  With
``api_key`` (and optionally ``read_only_api_key``) set, requests need an ``api-key`` header (or
``Authorization: Bearer``): missing or wrong keys get 401 with a plain-text body, a read-only
key on a write gets 403; ``/``, ``/healthz``, ``/livez`` and ``/readyz`` stay open, as on Qdrant.
``inference`` emulates Qdrant Cloud inference: it maps one inference object to its vector;
identical objects in one request are computed once, as Qdrant does.

No-store mode (``store=False``), for throughput benchmarks of the client side: an upsert body is
parsed with ``pydantic_core.from_json`` (4x faster than ``json.loads`` on vectors; validated with
pydantic only if ``validate_no_store=True``), its points are counted into
``stats.points_received`` / ``stats.points_upserted`` and the request answers ``completed``
without storing anything; the collection must still exist (404 otherwise), no vector sizes are
checked, and ``count`` / ``scroll`` see nothing.  Every other endpoint works as in storing mode.

Throughput, measured on 2 shared cores for 64-point upserts of 384-d + 64-d dense + 20-nonzero
sparse vectors (~600 kB of JSON per batch, ``wait=true``), points/s over two runs:

    ==================================  ============  ============
    client -> server                      1 thread      4 threads
    ==================================  ============  ============
    storing, QdrantClient, same process   1.9k - 2.0k   1.6k
    storing, QdrantClient, own process    1.7k - 1.9k   1.6k - 2.2k
    storing, pre-encoded bodies (httpx)   2.4k - 2.8k   1.9k - 2.2k
    no-store, QdrantClient, same process  4.2k          4.3k - 4.6k
    no-store, QdrantClient, own process   3.4k - 5.2k   4.5k - 6.0k
    no-store, pre-encoded bodies (httpx)  8.4k - 10k    8.5k - 8.8k
    ==================================  ============  ============

Storing costs ~7 ms of pydantic parsing and ~25 ms of local-mode upsert per batch, and slows by
about a third as the collection grows to 25k points; the client spends ~10 ms per batch of its
own (``model_dump_json``, the inference inspector, a new connection).  In one process everything
shares the GIL, so threads add little.  For benchmarks, run the server in its own process:
``python tests/qdrant_server.py --port 6333 --no-store`` (or ``python -m fakes.qdrant`` with
``tests/`` on the path) prints its URL and serves until SIGTERM / Ctrl-C.

Notes on qdrant-client 1.20's REST behaviour (verified by ``tests/test_qdrant_server.py``):

* ``QdrantClient(url=...)`` starts a background thread that sends ``GET /`` to compare versions
  unless ``check_compatibility=False``; that request shows up in the stats (and, with
  ``Faults(kinds=None)``, may consume a scripted fault).  This server answers with the client's
  own major.minor version, so no warning is emitted either way.
* A 429 becomes ``ResourceExhaustedResponse`` only when ``Retry-After`` is present and an
  integer (``"0"`` works: ``retry_after_s == 0``); a fractional value such as ``"0.5"`` raises
  a plain ``QdrantException("Retry-After header value is not a valid integer")`` and a 429
  without the header is an ordinary ``UnexpectedResponse``.
* ``timeout=`` of the client is rounded up to whole seconds (``math.ceil``), so a client timeout
  below 1 s is impossible through the public API; a per-call ``timeout=`` is sent as the
  ``?timeout=`` query param *and* replaces the HTTP timeout of that call.
* For ``127.0.0.1`` / ``localhost`` the client disables keep-alive: every request opens a new
  TCP connection (and here a new handler thread).
* Constructing a ``QdrantClient(url=...)`` costs ~0.1 s (an SSL context with the certifi bundle,
  even for http, plus the inference schema parser): make one per worker, not per batch.  The
  client is thread-safe and, without keep-alive, concurrent calls use separate connections.
  ``QdrantClient(url=..., transport=httpx.MockTransport(...))`` passes the transport to httpx.
* A reset *after* a ``200`` status line still surfaces as ``ResponseHandlingException``: the
  outcome of such a write is unknown, exactly like a timeout.
* ``upload_points`` / ``upload_collection`` (REST) retry a 429 forever, sleeping
  ``retry_after_s`` without counting attempts, and retry other errors ``max_retries`` times
  with no backoff; they default to ``wait=False``.
* With ``api_key`` over ``http://`` the client warns "Api key is used with an insecure
  connection"; ``api_key`` alone also switches the default scheme to https unless the URL
  says ``http://`` (``QdrantTestServer.client()`` passes ``https=False``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from qdrant_client import QdrantClient

from .faults import Fault, Faults
from .http import Exchange, LoopbackServer, Record, Spawned, serve_until_signal, spawn
from .qdrant_api import (
    KINDS,
    READ_ONLY_KINDS,
    HttpError,
    QdrantBackend,
    jsonable,
    match_route,
)
from .qdrant_engine import EngineCheck

__all__ = [
    "KINDS",
    "Fault",
    "Faults",
    "QdrantTestServer",
    "RequestRecord",
    "Stats",
    "spawn_qdrant_server",
]

_OPEN_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz"})
_PARTIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
    b'{"result":{"operation_id":'
)
_STATUS_MESSAGES = {
    429: "Rate limiting exceeded: Write rate limit exceeded, retry later",
    500: "Service internal error: injected fault",
    503: "Service unavailable: injected fault",
}


@dataclass
class Stats:
    """A snapshot of the server's counters."""

    requests: Counter[str] = field(default_factory=Counter)  # route -> n
    responses: Counter[tuple[str, int | str]] = field(default_factory=Counter)  # (route, status)
    statuses: Counter[int | str] = field(default_factory=Counter)  # status or "reset"/"timeout"
    faults: Counter[str] = field(default_factory=Counter)  # "429", "reset", "over_cap", ...
    upsert_requests: int = 0  # upsert requests received (any outcome)
    upserts_applied: int = 0  # upsert requests whose points were stored (or counted, no-store)
    points_received: int = 0  # points in upsert bodies that parsed
    points_upserted: int = 0  # points in applied upserts (a retried batch counts again)
    points_rejected: int = 0  # points in upserts answered 4xx by the backend
    bytes_received: int = 0
    max_concurrent_seen: int = 0
    inference_objects: int = 0  # inference objects in upserts (server-side inference)
    inference_computed: int = 0  # of those, computed: one per distinct object per request
    errors: list[str] = field(default_factory=list)  # unexpected backend exceptions (500s)


@dataclass(kw_only=True)
class RequestRecord(Record):
    """One served request, as kept in ``QdrantTestServer.requests``."""

    route: str = ""
    params: dict[str, str] = field(default_factory=dict)
    collection: str | None = None
    applied: bool = False  # the request was executed against the backend
    points: int = 0  # points in an upsert body


class _Counters:
    """The backend's view of the stats (``qdrant_api.StatsSink``)."""

    def __init__(self, server: QdrantTestServer) -> None:
        self._server = server

    def add(self, **counts: int) -> None:
        server = self._server
        with server._lock:
            for name, n in counts.items():
                setattr(server._stats, name, getattr(server._stats, name) + n)

    def error(self, message: str) -> None:
        with self._server._lock:
            self._server._stats.errors.append(message)


class QdrantTestServer(LoopbackServer):
    """Qdrant REST server on a background thread, backed by a local-mode ``QdrantClient``."""

    thread_name = "qdrant-test-server"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str | None = None,
        store: bool = True,
        validate_no_store: bool = False,
        api_key: str | None = None,
        read_only_api_key: str | None = None,
        version: str | None = None,
        faults: Faults | None = None,
        request_log_size: int = 10_000,
        gate_timeout_s: float = 30.0,
        drain_timeout_s: float = 5.0,
        inference: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            faults=faults,
            request_log_size=request_log_size,
            gate_timeout_s=gate_timeout_s,
            drain_timeout_s=drain_timeout_s,
        )
        self.api_key = api_key
        self.read_only_api_key = read_only_api_key
        self._stats = Stats()
        self.backend = QdrantBackend(
            _Counters(self),
            path=path,
            store=store,
            validate_no_store=validate_no_store,
            version=version,
            inference=inference,
        )

    # --- the backend -------------------------------------------------------------------------

    @property
    def local(self) -> QdrantClient:
        return self.backend.local

    @property
    def lock(self) -> Any:
        """Guards ``local`` (an ``RLock``)."""
        return self.backend.lock

    @property
    def engine(self) -> EngineCheck | None:
        """Qdrant's engine, checking upserted points (``None`` when not storing)."""
        return self.backend.engine

    @property
    def version(self) -> str:
        return self.backend.version

    @property
    def payload_indexes(self) -> dict[str, dict[str, Any]]:
        return self.backend.payload_indexes

    def reset(self) -> None:
        """Back to a fresh state (for a shared fixture): no collections or aliases, default
        ``Faults``, an open gate, zeroed stats and an empty request log."""
        self.faults = Faults()
        self.resume()
        self.backend.clear()
        self.reset_stats()

    def close(self) -> None:
        self.stop()
        self.backend.close()

    def client(self, **kwargs: Any) -> QdrantClient:
        """A REST ``QdrantClient`` for this server (no version-check request)."""
        kwargs.setdefault("check_compatibility", False)
        if self.api_key is not None:
            kwargs.setdefault("api_key", self.api_key)
            kwargs.setdefault("https", False)
        return QdrantClient(url=self.url, **kwargs)

    # --- introspection -----------------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        with self._lock:
            snapshot = copy.deepcopy(self._stats)
            snapshot.faults = Counter(self._fault_counts)
            snapshot.max_concurrent_seen = self._max_concurrent_seen
            return snapshot

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = Stats()
        self.reset_counters()

    def on_record(self, rec: RequestRecord) -> None:
        status: int | str = rec.status if rec.status is not None else str(rec.fault)
        self._stats.responses[(rec.route, status)] += 1
        self._stats.statuses[status] += 1

    # --- request handling --------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        route, kind, match = match_route(ex.method, ex.path.rstrip("/") or "/")
        groups = {k: unquote(v) for k, v in match.groupdict().items()} if match else {}
        rec = RequestRecord(
            method=ex.method,
            path=ex.target,
            route=route,
            kind=kind,
            params=ex.query,
            collection=groups.get("c"),
            started=ex.started,
        )
        with self._lock:
            self._stats.requests[route] += 1
            self._stats.bytes_received += len(ex.body)
            if kind == "upsert":
                self._stats.upsert_requests += 1
        try:
            if not self.admit(kind):
                rec.fault = "over_cap"
                self._send_error(ex, rec, 503, "Service unavailable: too many concurrent requests")
                return
            try:
                self._serve_admitted(ex, rec, match is not None, groups)
            except Exception as e:  # a bug here must still answer, and show up in stats
                with self._lock:
                    self._stats.errors.append(f"{route}: {e!r}")
                if not rec._recorded:
                    self._send_error(ex, rec, 500, f"Service internal error: {e!r}")
            finally:
                self.release()
        finally:
            self.record(rec)  # normally done just before the answer is written

    def _serve_admitted(
        self, ex: Exchange, rec: RequestRecord, routed: bool, groups: dict[str, str]
    ) -> None:
        if not routed:
            self.respond(ex, rec, 404, b"", content_type="text/plain")
            return
        denied = self._check_auth(ex, rec)
        if denied is not None:
            status, message, as_json = denied
            if as_json:
                self._send_error(ex, rec, status, message)
            else:
                self.respond(ex, rec, status, message.encode(), content_type="text/plain")
            return
        self.delay(rec.kind)
        fault = self.draw(rec.kind)
        if fault is not None:
            rec.fault = fault.label
            if not fault.apply:
                self._inject(ex, rec, fault)
                return
        try:
            result = self.backend.execute(rec, groups, ex.body)
        except HttpError as e:
            if fault is not None:  # the fault wins: the client never sees the real answer
                self._inject(ex, rec, fault)
            else:
                self._send_error(ex, rec, e.status, e.message)
            return
        if fault is not None:
            self._inject(ex, rec, fault)
        elif rec.kind == "root":
            self.respond(ex, rec, 200, json.dumps(result).encode())
        elif rec.kind == "health":
            self.respond(ex, rec, 200, str(result).encode(), content_type="text/plain")
        else:
            doc = {"result": jsonable(result), "status": "ok", "time": self._elapsed(rec)}
            self.respond(ex, rec, 200, json.dumps(doc, separators=(",", ":")).encode())

    def _check_auth(self, ex: Exchange, rec: RequestRecord) -> tuple[int, str, bool] | None:
        if self.api_key is None and self.read_only_api_key is None:
            return None
        if ex.path in _OPEN_PATHS:
            return None
        key = ex.headers.get("api-key")
        if key is None:
            auth = ex.headers.get("authorization", "")
            key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if key is None:
            return 401, "Must provide an API key or an Authorization bearer token", False
        if self.api_key is not None and hmac.compare_digest(key, self.api_key):
            return None
        if self.read_only_api_key is not None and hmac.compare_digest(key, self.read_only_api_key):
            if ex.method == "GET" or rec.kind in READ_ONLY_KINDS:
                return None
            return 403, "Forbidden: Write access is required", True
        return 401, "Invalid API key or JWT", False

    def _inject(self, ex: Exchange, rec: RequestRecord, fault: Fault) -> None:
        if fault.status is None:
            self.drop(ex, rec, fault, partial=_PARTIAL_RESPONSE)
            return
        headers = self.faults.headers_for(fault)
        if fault.status == 502:
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self.respond(ex, rec, 502, html, content_type="text/html", headers=headers)
            return
        message = _STATUS_MESSAGES.get(fault.status, f"Injected fault: HTTP {fault.status}")
        self._send_error(ex, rec, fault.status, message, headers=headers)

    @staticmethod
    def _elapsed(rec: RequestRecord) -> float:
        return time.perf_counter() - rec.started

    def _send_error(
        self,
        ex: Exchange,
        rec: RequestRecord,
        status: int,
        message: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        rec.error = message
        doc = {"status": {"error": message}, "time": self._elapsed(rec)}
        self.respond(ex, rec, status, json.dumps(doc).encode(), headers=headers)


# --- own process -------------------------------------------------------------------------------


@contextlib.contextmanager
def spawn_qdrant_server(*args: str, ready_timeout_s: float = 30.0) -> Iterator[Spawned]:
    """``python -m fakes.qdrant --port 0 --json <args>`` in a child process; ``.ready["url"]``."""
    with spawn(
        "fakes.qdrant", ["--port", "0", "--json", *args], ready_timeout_s=ready_timeout_s
    ) as spawned:
        yield spawned


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server in the foreground, e.g. in its own process for a benchmark::

    python tests/qdrant_server.py --port 6333 --no-store

    The first line on stdout is the URL (``--json``: ``{"url": ..., "port": ...}``).
    """
    parser = argparse.ArgumentParser(description="A Qdrant REST test server (local mode).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--path", default=None, help="persist the local mode here")
    parser.add_argument("--no-store", action="store_true", help="count upserted points only")
    parser.add_argument("--validate-no-store", action="store_true")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--json", action="store_true", help="print the ready line as JSON")
    args = parser.parse_args(argv)
    server = QdrantTestServer(
        host=args.host,
        port=args.port,
        path=args.path,
        store=not args.no_store,
        validate_no_store=args.validate_no_store,
        api_key=args.api_key,
    ).start()
    ready = json.dumps({"url": server.url, "port": server.port}) if args.json else server.url
    try:
        serve_until_signal(ready)
    finally:
        stats = server.stats
        server.close()
        print(
            f"requests={sum(stats.requests.values())} points_upserted={stats.points_upserted}",
            flush=True,
        )


if __name__ == "__main__":
    main()
