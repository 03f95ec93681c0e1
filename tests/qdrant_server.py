"""A small Qdrant REST test server backed by qdrant-client's local mode, with fault injection.

There is no Qdrant binary in the test environment, so this module speaks enough of Qdrant's REST
API for a real ``qdrant_client.QdrantClient(url=server.url)`` (REST, not gRPC) to create
collections, upsert, read back, delete and alias, while a test injects the failures a sink has to
survive: 429 with ``Retry-After``, 5xx, latency, connection resets, timeouts, a concurrency cap,
"applied but answered with an error", and a scripted queue of exact responses.

Usage::

    with QdrantTestServer() as server:
        client = QdrantClient(url=server.url, timeout=5, check_compatibility=False)
        ...
        server.faults = Faults(error_rate=0.2, seed=7)      # 20 % of upserts fail with 429/5xx
        server.push_script(429, 503, None, Fault(500, apply=True))
        server.stats.points_upserted, server.max_concurrent_seen

API (all methods are thread-safe and may be called while requests are being served)::

    QdrantTestServer(*, host="127.0.0.1", port=0, path=None, store=True,
                     validate_no_store=False, api_key=None, read_only_api_key=None,
                     version=None, faults=None, request_log_size=10_000,
                     gate_timeout_s=30.0, drain_timeout_s=5.0)
        .start() -> self          .stop()   (HTTP side only; data is kept, start() again
                                             rebinds the same port: a "server restart")
        .close()                  stop() and close the backing local client
        .reset()                  drop all collections / aliases, default Faults, zero stats
        with QdrantTestServer() as s: ...   (start() / close())
        .url  .host  .port  .api_key
        .faults  (get / set a Faults; setting resets the seeded RNG and the script queue)
        .push_script(*items)      append scripted outcomes for the next in-scope requests:
                                  None (serve normally), an int status, "reset", "timeout",
                                  or a Fault
        .pause() / .resume()      hold in-scope requests at a gate (bounded by gate_timeout_s)
        .wait_for_in_flight(n, timeout=5.0) -> bool
        .in_flight  .max_concurrent_seen
        .stats -> Stats (a snapshot)        .reset_stats()   (also clears the request log)
        .requests -> list[RequestRecord]    (bounded log of served requests)
        .payload_indexes -> {collection: {field: schema}}
        .local -> the backing QdrantClient (local mode); use it under ``with server.lock:``
        .client(**kwargs) -> QdrantClient(url=..., check_compatibility=False, api_key=...)

    Faults(kinds=frozenset({"upsert"}), error_rate=0.0, error_statuses=(429, 500, 502, 503),
           retry_after_s=1, reset_rate=0.0, timeout_rate=0.0, hold_s=5.0,
           apply_then_fail=False, latency_s=0.0, latency_jitter_s=0.0, max_concurrent=None,
           script=(), seed=0)
    Fault(status=None, *, reset=False, timeout=False, apply=False, retry_after_s=<default>)

Fault semantics:

* ``kinds`` selects which request kinds (see ``KINDS``) the faults apply to; ``None`` means all
  requests, including ``GET /`` and collection management.  Rates may be a float or a mapping
  ``{kind: rate}`` (``"*"`` is the default entry).  One seeded ``random.Random`` draws, per
  in-scope request, first an error (status picked uniformly from ``error_statuses``), else a
  reset, else a timeout, so a single-threaded test sees the same sequence every run.
* The script queue (``Faults.script`` / ``push_script``) is consumed before the random draw,
  one item per in-scope request.
* 429 answers carry ``Retry-After: <retry_after_s>`` (ints as ``"1"``, floats as ``"0.5"``;
  ``None`` sends no header).  502 answers carry an HTML body like a proxy's would; 429 / 500 /
  503 carry Qdrant's JSON error body.
* ``reset``: the server sends the status line, headers and the first bytes of a body, then
  closes the socket with ``SO_LINGER=0`` (TCP RST).
* ``timeout``: the server sends nothing and holds the request until the client disconnects,
  ``hold_s`` elapses or the server stops, then resets the connection.  Never blocks ``stop()``.
* ``apply`` / ``apply_then_fail``: the request is executed (an upsert is stored) and the answer
  is replaced by the fault, the "did my write happen?" case a sink must make idempotent.
* ``latency_s`` (+ uniform jitter) is slept before serving; with ``max_concurrent`` set, an
  in-scope request arriving while ``in_flight >= max_concurrent`` gets an immediate 503
  ("over_cap" in ``stats.faults``).  ``in_flight`` counts every request being served.

Endpoints (paths, methods and query params as used by ``qdrant_client/http/api/*.py``)::

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

Bodies are parsed into qdrant-client's own pydantic models and executed on a local-mode
``QdrantClient`` under one lock.  Answers are shaped like Qdrant's: ``{"result": ..., "status":
"ok", "time": ...}``; errors ``{"status": {"error": "..."}, "time": ...}`` with 400 for bad input
(``"Wrong input: Vector dimension error: expected dim: 4, got 3 for vector 'a'"``, ``"Format
error in JSON body: ..."``), 404 for a missing collection (``"Not found: Collection `x` doesn't
exist!"``), 409 for an existing one.  A rejected upsert stores nothing (local mode validates the
whole batch first), so a sink can bisect a batch to find the bad point.  With ``api_key`` (and
optionally ``read_only_api_key``) set, requests need an ``api-key`` header (or ``Authorization:
Bearer``): missing or wrong keys get 401 with a plain-text body, a read-only key on a write gets
403; ``/``, ``/healthz``, ``/livez`` and ``/readyz`` stay open, as on Qdrant.

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
about a third as the collection grows to 25k points (the 4-thread runs store 12.8k points); the
client spends ~10 ms per batch of its own (``model_dump_json``, the inference inspector, a new
connection).  In one process everything shares the GIL, so threads add little.  For
benchmarks, run the server in its own process: ``python tests/qdrant_server.py --port 6333
--no-store`` prints its URL and serves until SIGTERM / Ctrl-C.

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
import importlib.metadata
import json
import random
import re
import select
import signal
import socket
import socketserver
import struct
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pydantic
import pydantic_core
from qdrant_client import QdrantClient, models

__all__ = [
    "KINDS",
    "Fault",
    "Faults",
    "QdrantTestServer",
    "RequestRecord",
    "Stats",
]

_DEFAULT: Any = object()  # "use the Faults-level value"


@dataclass(frozen=True)
class Fault:
    """One injected outcome: an HTTP ``status``, a ``reset`` or a ``timeout``.

    ``apply=True`` executes the request first (an upsert is stored) and then fails anyway.
    ``retry_after_s`` overrides ``Faults.retry_after_s`` for a 429, and adds a ``Retry-After``
    header to any other status (e.g. a 503 from a proxy).
    """

    status: int | None = None
    _: KW_ONLY
    reset: bool = False
    timeout: bool = False
    apply: bool = False
    retry_after_s: Any = _DEFAULT

    def __post_init__(self) -> None:
        chosen = (self.status is not None) + self.reset + self.timeout
        if chosen != 1:
            raise ValueError("a Fault is exactly one of status=..., reset=True or timeout=True")

    @property
    def label(self) -> str:
        base = f"status:{self.status}" if self.status is not None else self.kind
        return base + ("+apply" if self.apply else "")

    @property
    def kind(self) -> str:
        return "status" if self.status is not None else ("reset" if self.reset else "timeout")

    @classmethod
    def coerce(cls, item: Fault | int | str | None) -> Fault | None:
        """``None`` -> serve normally; ``int`` -> status; ``"reset"`` / ``"timeout"``."""
        if item is None or isinstance(item, Fault):
            return item
        if isinstance(item, bool):
            raise TypeError(f"not a fault: {item!r}")
        if isinstance(item, int):
            return cls(status=item)
        if item == "reset":
            return cls(reset=True)
        if item == "timeout":
            return cls(timeout=True)
        raise ValueError(f"not a fault: {item!r} (use None, an int status, 'reset', 'timeout')")


Rate = float | Mapping[str, float]


@dataclass
class Faults:
    """Fault-injection settings; assign a new one to ``QdrantTestServer.faults`` to change them."""

    kinds: frozenset[str] | None = frozenset({"upsert"})
    error_rate: Rate = 0.0
    error_statuses: Sequence[int] = (429, 500, 502, 503)
    retry_after_s: float | int | str | None = 1
    reset_rate: Rate = 0.0
    timeout_rate: Rate = 0.0
    hold_s: float = 5.0
    apply_then_fail: bool = False
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    max_concurrent: int | None = None
    script: Sequence[Fault | int | str | None] = ()
    seed: int = 0

    def in_scope(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    @staticmethod
    def rate(value: Rate, kind: str) -> float:
        if isinstance(value, Mapping):
            return float(value.get(kind, value.get("*", 0.0)))
        return float(value)


@dataclass
class Stats:
    """A snapshot of the server's counters."""

    requests: Counter[str] = field(default_factory=Counter)  # route -> n
    responses: Counter[tuple[str, int | str]] = field(default_factory=Counter)  # (route, status)
    statuses: Counter[int | str] = field(default_factory=Counter)  # status or "reset"/"timeout"
    faults: Counter[str] = field(default_factory=Counter)  # "status:429", "reset", "over_cap"...
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


@dataclass
class RequestRecord:
    """One served request, as kept in ``QdrantTestServer.requests``."""

    method: str
    path: str
    route: str
    kind: str
    params: dict[str, str]
    collection: str | None = None
    status: int | None = None  # None for reset / timeout
    fault: str | None = None  # Fault.label, "over_cap", or None
    applied: bool = False  # the request was executed against the backend
    points: int = 0  # points in an upsert body
    error: str | None = None
    started: float = 0.0
    duration_s: float = 0.0  # until the answer (or the reset / hold) started
    _recorded: bool = field(default=False, repr=False, compare=False)


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- routing -------------------------------------------------------------------------------

_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    (method, re.compile("^" + pattern + "$"), route, kind)
    for method, pattern, route, kind in [
        ("GET", r"/", "GET /", "root"),
        ("GET", r"/(?:healthz|livez|readyz)", "GET /healthz", "health"),
        ("GET", r"/collections", "GET /collections", "list_collections"),
        ("GET", r"/aliases", "GET /aliases", "list_aliases"),
        ("POST", r"/collections/aliases", "POST /collections/aliases", "update_aliases"),
        ("GET", r"/collections/(?P<c>[^/]+)", "GET /collections/{name}", "get_collection"),
        ("PUT", r"/collections/(?P<c>[^/]+)", "PUT /collections/{name}", "create_collection"),
        ("PATCH", r"/collections/(?P<c>[^/]+)", "PATCH /collections/{name}", "update_collection"),
        ("DELETE", r"/collections/(?P<c>[^/]+)", "DELETE /collections/{name}", "delete_collection"),
        ("GET", r"/collections/(?P<c>[^/]+)/exists", "GET /collections/{name}/exists", "exists"),
        (
            "GET",
            r"/collections/(?P<c>[^/]+)/aliases",
            "GET /collections/{name}/aliases",
            "collection_aliases",
        ),
        ("PUT", r"/collections/(?P<c>[^/]+)/points", "PUT /collections/{name}/points", "upsert"),
        (
            "POST",
            r"/collections/(?P<c>[^/]+)/points",
            "POST /collections/{name}/points",
            "retrieve",
        ),
        (
            "GET",
            r"/collections/(?P<c>[^/]+)/points/(?P<id>[^/]+)",
            "GET /collections/{name}/points/{id}",
            "get_point",
        ),
        (
            "POST",
            r"/collections/(?P<c>[^/]+)/points/scroll",
            "POST /collections/{name}/points/scroll",
            "scroll",
        ),
        (
            "POST",
            r"/collections/(?P<c>[^/]+)/points/count",
            "POST /collections/{name}/points/count",
            "count",
        ),
        (
            "POST",
            r"/collections/(?P<c>[^/]+)/points/delete",
            "POST /collections/{name}/points/delete",
            "delete_points",
        ),
        (
            "POST",
            r"/collections/(?P<c>[^/]+)/points/query",
            "POST /collections/{name}/points/query",
            "query",
        ),
        (
            "POST",
            r"/collections/(?P<c>[^/]+)/points/query/batch",
            "POST /collections/{name}/points/query/batch",
            "query_batch",
        ),
        (
            "PUT",
            r"/collections/(?P<c>[^/]+)/index",
            "PUT /collections/{name}/index",
            "create_index",
        ),
        (
            "DELETE",
            r"/collections/(?P<c>[^/]+)/index/(?P<field>[^/]+)",
            "DELETE /collections/{name}/index/{field}",
            "delete_index",
        ),
    ]
]

#: Every request kind, for ``Faults.kinds``.
KINDS: frozenset[str] = frozenset(kind for *_, kind in _ROUTES)
#: Kinds a read-only API key may use (Qdrant: GETs and the read-only POSTs).
_READ_ONLY_KINDS = frozenset({"retrieve", "scroll", "count", "query", "query_batch"})
_OPEN_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz"})

_POINT_INSERT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(models.PointInsertOperations)
_POINTS_SELECTOR: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(models.PointsSelector)
_ORDERINGS = frozenset(o.value for o in models.WriteOrdering)

_NOT_FOUND = re.compile(r"^Collection (?P<name>.+) not found$")
_EXISTS = re.compile(r"^(?P<what>Collection|Alias) (?P<name>.+) already exists$")

_PARTIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
    b'{"result":{"operation_id":'
)

_STATUS_MESSAGES = {
    429: "Rate limiting exceeded: Write rate limit exceeded, retry later",
    500: "Service internal error: injected fault",
    503: "Service unavailable: injected fault",
}


def _match_route(method: str, path: str) -> tuple[str, str, re.Match[str] | None]:
    for r_method, pattern, route, kind in _ROUTES:
        if r_method == method and (match := pattern.match(path)):
            return route, kind, match
    return f"{method} {path}", "unknown", None


def _default_version() -> str:
    major, minor, *_ = importlib.metadata.version("qdrant-client").split(".")
    return f"{major}.{minor}.0"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode="json", exclude_none=True)
    if isinstance(obj, list | tuple):
        return [_jsonable(o) for o in obj]
    return obj


def _format_retry_after(value: float | int | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse_bool(params: dict[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise _HttpError(
        400, f"Query deserialize error: {name}: provided string was not `true` or `false`"
    )


def _parse_point_id(raw: str) -> int | str:
    return int(raw) if raw.isdigit() else raw


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are dropped after this
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.app._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._track_connection(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.app._serve(self)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    app: QdrantTestServer

    def server_bind(self) -> None:
        # skip HTTPServer's socket.getfqdn(), which may wait on a DNS lookup
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class QdrantTestServer:
    """Qdrant REST server on a background thread, backed by a local-mode ``QdrantClient``."""

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
        """``inference`` emulates Qdrant Cloud inference: it maps one inference object to its
        vector; identical objects in one request are computed once, as Qdrant does."""
        self.inference = inference
        self.host = host
        self.port = port
        self.store = store
        self.validate_no_store = validate_no_store
        self.api_key = api_key
        self.read_only_api_key = read_only_api_key
        self.version = version or _default_version()
        self.gate_timeout_s = gate_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.lock = threading.RLock()  # guards the backing local client
        self.local = QdrantClient(path=path) if path else QdrantClient(location=":memory:")
        self._stats_lock = threading.Lock()
        self._in_flight_cv = threading.Condition(self._stats_lock)
        self._stats = Stats()
        self._in_flight = 0
        self._log: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._faults = Faults()
        self._rng = random.Random(0)
        self._script: deque[Fault | None] = deque()
        self._stop_event = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._op_id = 0
        self._created: dict[str, models.CreateCollection] = {}
        self._indexes: dict[str, dict[str, Any]] = {}
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        if faults is not None:
            self.faults = faults

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> QdrantTestServer:
        if self._httpd is not None:
            return self
        self._stop_event.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.app = self
        self.port = httpd.server_address[1]  # a restart rebinds the same port
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"qdrant-test-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (data is kept); held, paused and sleeping requests are released."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop_event.set()
        self._gate.set()
        httpd.shutdown()
        httpd.server_close()
        with self._stats_lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections must not outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._in_flight_cv:
            self._in_flight_cv.wait_for(lambda: self._in_flight == 0, self.drain_timeout_s)
        if self._thread is not None:
            self._thread.join(self.drain_timeout_s)
            self._thread = None

    def reset(self) -> None:
        """Back to a fresh state (for a shared fixture): no collections or aliases, default
        ``Faults``, an open gate, zeroed stats and an empty request log."""
        self.faults = Faults()
        self.resume()
        with self.lock:
            for description in self.local.get_collections().collections:
                self.local.delete_collection(description.name)
            self._created.clear()
            self._indexes.clear()
        self.reset_stats()

    def close(self) -> None:
        self.stop()
        with self.lock:
            self.local.close()

    def __enter__(self) -> QdrantTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, **kwargs: Any) -> QdrantClient:
        """A REST ``QdrantClient`` for this server (no version-check request)."""
        kwargs.setdefault("check_compatibility", False)
        if self.api_key is not None:
            kwargs.setdefault("api_key", self.api_key)
            kwargs.setdefault("https", False)
        return QdrantClient(url=self.url, **kwargs)

    # --- fault control -----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        script = [Fault.coerce(item) for item in faults.script]
        with self._stats_lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._script = deque(script)

    def push_script(self, *items: Fault | int | str | None) -> None:
        script = [Fault.coerce(item) for item in items]
        with self._stats_lock:
            self._script.extend(script)

    @property
    def script_remaining(self) -> int:
        with self._stats_lock:
            return len(self._script)

    def pause(self) -> None:
        """Hold in-scope requests (after they count as in flight) until ``resume()``."""
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    @property
    def in_flight(self) -> int:
        with self._stats_lock:
            return self._in_flight

    @property
    def max_concurrent_seen(self) -> int:
        with self._stats_lock:
            return self._stats.max_concurrent_seen

    def wait_for_in_flight(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``n`` requests are in flight."""
        with self._in_flight_cv:
            return self._in_flight_cv.wait_for(lambda: self._in_flight >= n, timeout)

    # --- introspection -----------------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        with self._stats_lock:
            return copy.deepcopy(self._stats)  # a snapshot

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = Stats(max_concurrent_seen=self._in_flight)
            self._log.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        with self._stats_lock:
            return list(self._log)

    @property
    def payload_indexes(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: dict(fields) for name, fields in self._indexes.items()}

    # --- request handling --------------------------------------------------------------------

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._stats_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _serve(self, h: _Handler) -> None:
        started = time.perf_counter()
        split = urlsplit(h.path)
        path = split.path.rstrip("/") or "/"
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body = self._read_body(h)
        method = h.command
        route, kind, match = _match_route(method, path)
        groups = {k: unquote(v) for k, v in match.groupdict().items()} if match else {}
        rec = RequestRecord(
            method, h.path, route, kind, params, collection=groups.get("c"), started=started
        )
        with self._stats_lock:
            faults = self._faults
            in_scope = faults.in_scope(kind)
            s = self._stats
            s.requests[route] += 1
            s.bytes_received += len(body)
            if kind == "upsert":
                s.upsert_requests += 1
            cap = faults.max_concurrent
            if in_scope and cap is not None and self._in_flight >= cap:
                over_cap = True
                s.faults["over_cap"] += 1
            else:
                over_cap = False
                self._in_flight += 1
                s.max_concurrent_seen = max(s.max_concurrent_seen, self._in_flight)
                self._in_flight_cv.notify_all()
        try:
            if over_cap:
                rec.fault = "over_cap"
                self._send_error(h, rec, 503, "Service unavailable: too many concurrent requests")
                return
            try:
                self._serve_admitted(h, rec, faults, in_scope, match, groups, body)
            except Exception as e:  # a bug here must still answer, and show up in stats
                with self._stats_lock:
                    self._stats.errors.append(f"{route}: {e!r}")
                if not rec._recorded:
                    self._send_error(h, rec, 500, f"Service internal error: {e!r}")
            finally:
                with self._in_flight_cv:
                    self._in_flight -= 1
                    self._in_flight_cv.notify_all()
        finally:
            self._record(rec)  # normally done just before the answer is written

    def _record(self, rec: RequestRecord) -> None:
        """Count a request once, before its answer leaves: a client that has seen the answer
        also sees it in ``stats`` and ``requests``."""
        if rec._recorded:
            return
        rec._recorded = True
        rec.duration_s = time.perf_counter() - rec.started
        status: int | str = rec.status if rec.status is not None else str(rec.fault)
        with self._stats_lock:
            self._stats.responses[(rec.route, status)] += 1
            self._stats.statuses[status] += 1
            self._log.append(rec)

    def _serve_admitted(
        self,
        h: _Handler,
        rec: RequestRecord,
        faults: Faults,
        in_scope: bool,
        match: re.Match[str] | None,
        groups: dict[str, str],
        body: bytes,
    ) -> None:
        if match is None:
            self._send(h, rec, 404, b"", content_type="text/plain")
            return
        denied = self._check_auth(h, rec)
        if denied is not None:
            status, message, as_json = denied
            if as_json:
                self._send_error(h, rec, status, message)
            else:
                self._send(h, rec, status, message.encode(), content_type="text/plain")
            return
        fault = None
        if in_scope:
            self._wait_gate()
            latency = faults.latency_s
            if faults.latency_jitter_s:
                with self._stats_lock:
                    latency += self._rng.uniform(0.0, faults.latency_jitter_s)
            if latency > 0:
                self._stop_event.wait(latency)
            fault = self._draw_fault(faults, rec.kind)
        if fault is not None:
            rec.fault = fault.label
            with self._stats_lock:
                self._stats.faults[fault.label] += 1
            if not fault.apply:
                self._inject(h, rec, fault, faults)
                return
        try:
            result = self._execute(rec, groups, body)
        except _HttpError as e:
            if fault is not None:  # the fault wins: the client never sees the real answer
                self._inject(h, rec, fault, faults)
            else:
                self._send_error(h, rec, e.status, e.message)
            return
        if fault is not None:
            self._inject(h, rec, fault, faults)
            return
        if rec.kind == "root":
            payload = json.dumps(result).encode()
            self._send(h, rec, 200, payload)
        elif rec.kind == "health":
            self._send(h, rec, 200, str(result).encode(), content_type="text/plain")
        else:
            elapsed = time.perf_counter() - rec.started
            doc = {"result": _jsonable(result), "status": "ok", "time": elapsed}
            self._send(h, rec, 200, json.dumps(doc, separators=(",", ":")).encode())

    def _check_auth(self, h: _Handler, rec: RequestRecord) -> tuple[int, str, bool] | None:
        if self.api_key is None and self.read_only_api_key is None:
            return None
        if urlsplit(h.path).path in _OPEN_PATHS:
            return None
        key = h.headers.get("api-key")
        if key is None:
            auth = h.headers.get("authorization", "")
            key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if key is None:
            return 401, "Must provide an API key or an Authorization bearer token", False
        if self.api_key is not None and hmac.compare_digest(key, self.api_key):
            return None
        if self.read_only_api_key is not None and hmac.compare_digest(key, self.read_only_api_key):
            if h.command == "GET" or rec.kind in _READ_ONLY_KINDS:
                return None
            return 403, "Forbidden: Write access is required", True
        return 401, "Invalid API key or JWT", False

    def _wait_gate(self) -> None:
        deadline = time.monotonic() + self.gate_timeout_s
        while not self._gate.wait(0.05):
            if self._stop_event.is_set() or time.monotonic() > deadline:
                return

    def _draw_fault(self, faults: Faults, kind: str) -> Fault | None:
        with self._stats_lock:
            if self._script:
                return self._script.popleft()
            error_rate = faults.rate(faults.error_rate, kind)
            reset_rate = faults.rate(faults.reset_rate, kind)
            timeout_rate = faults.rate(faults.timeout_rate, kind)
            if error_rate + reset_rate + timeout_rate <= 0:
                return None
            x = self._rng.random()
            apply = faults.apply_then_fail
            if x < error_rate:
                return Fault(status=self._rng.choice(list(faults.error_statuses)), apply=apply)
            if x < error_rate + reset_rate:
                return Fault(reset=True, apply=apply)
            if x < error_rate + reset_rate + timeout_rate:
                return Fault(timeout=True, apply=apply)
            return None

    def _inject(self, h: _Handler, rec: RequestRecord, fault: Fault, faults: Faults) -> None:
        if fault.status is not None:
            status = fault.status
            headers: list[tuple[str, str]] = []
            if fault.retry_after_s is not _DEFAULT:
                retry_after = fault.retry_after_s
            else:
                retry_after = faults.retry_after_s if status == 429 else None
            if retry_after is not None:
                headers.append(("Retry-After", _format_retry_after(retry_after)))
            if status == 502:
                html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                self._send(h, rec, 502, html, content_type="text/html", headers=headers)
            else:
                message = _STATUS_MESSAGES.get(status, f"Injected fault: HTTP {status}")
                self._send_error(h, rec, status, message, headers=headers)
            return
        rec.status = None
        self._record(rec)
        h.close_connection = True
        conn = h.connection
        if fault.timeout:
            self._hold(conn, faults.hold_s)
        else:
            with contextlib.suppress(OSError):
                h.wfile.write(_PARTIAL_RESPONSE)
                h.wfile.flush()
        with contextlib.suppress(OSError):  # SO_LINGER 0: close() sends a TCP RST
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def _hold(self, conn: socket.socket, hold_s: float) -> None:
        """Answer nothing until the client hangs up, ``hold_s`` passes or the server stops."""
        deadline = time.monotonic() + hold_s
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([conn], [], [], 0.05)
                if readable and conn.recv(1, socket.MSG_PEEK) == b"":
                    return  # the client gave up
            except (OSError, ValueError):
                return
            if readable:
                self._stop_event.wait(0.05)

    # --- responses ---------------------------------------------------------------------------

    def _send(
        self,
        h: _Handler,
        rec: RequestRecord,
        status: int,
        payload: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        rec.status = status
        self._record(rec)
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(payload)))
            for name, value in headers:
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(payload)
        except OSError:  # the client went away
            h.close_connection = True

    def _send_error(
        self,
        h: _Handler,
        rec: RequestRecord,
        status: int,
        message: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        rec.error = message
        doc = {"status": {"error": message}, "time": time.perf_counter() - rec.started}
        self._send(h, rec, status, json.dumps(doc).encode(), headers=headers)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    # --- the Qdrant API ----------------------------------------------------------------------

    def _execute(self, rec: RequestRecord, groups: dict[str, str], body: bytes) -> Any:
        handler: Callable[[RequestRecord, dict[str, str], bytes], Any] = getattr(
            self, f"_api_{rec.kind}"
        )
        try:
            result = handler(rec, groups, body)
        except _HttpError:
            raise
        except pydantic.ValidationError as e:
            raise _HttpError(400, f"Format error in JSON body: {_validation_message(e)}") from e
        except json.JSONDecodeError as e:
            raise _HttpError(400, f"Format error in JSON body: {e}") from e
        except (ValueError, TypeError, KeyError, IndexError, AssertionError) as e:
            raise _backend_error(e) from e
        except Exception as e:
            with self._stats_lock:
                self._stats.errors.append(f"{rec.route}: {e!r}")
            raise _HttpError(500, f"Service internal error: {e}") from e
        rec.applied = True
        return result

    @staticmethod
    def _parse(model: type[pydantic.BaseModel], body: bytes) -> Any:
        return model.model_validate_json(body or b"{}")

    def _next_op_id(self) -> int:
        with self._stats_lock:
            self._op_id += 1
            return self._op_id

    def _update_result(self, params: dict[str, str]) -> models.UpdateResult:
        wait = _parse_bool(params, "wait", False)
        ordering = params.get("ordering")
        if ordering is not None and ordering not in _ORDERINGS:
            raise _HttpError(400, f"Query deserialize error: unknown variant `{ordering}`")
        status = models.UpdateStatus.COMPLETED if wait else models.UpdateStatus.ACKNOWLEDGED
        return models.UpdateResult(operation_id=self._next_op_id(), status=status)

    def _require_collection(self, name: str) -> None:
        if not self.local.collection_exists(name):
            raise _HttpError(404, f"Not found: Collection `{name}` doesn't exist!")

    def _api_root(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        return {"title": "qdrant - vector search engine", "version": self.version, "commit": None}

    def _api_health(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        return "healthz check passed"

    def _api_list_collections(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            return self.local.get_collections()

    def _api_list_aliases(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            return self.local.get_aliases()

    def _api_collection_aliases(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            self._require_collection(g["c"])
            return self.local.get_collection_aliases(g["c"])

    def _api_update_aliases(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        op = self._parse(models.ChangeAliasesOperation, body)
        with self.lock:
            return self.local.update_collection_aliases(change_aliases_operations=op.actions)

    def _api_exists(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            return models.CollectionExistence(exists=self.local.collection_exists(g["c"]))

    def _api_get_collection(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        name = g["c"]
        with self.lock:
            info = self.local.get_collection(name)
            real_name = self._alias_target(name)
            created = self._created.get(real_name)
            indexes = dict(self._indexes.get(real_name, {}))
        if created is not None:
            params = info.config.params
            for attr in (
                "shard_number",
                "replication_factor",
                "write_consistency_factor",
                "on_disk_payload",
                "sharding_method",
            ):
                if getattr(created, attr, None) is not None:
                    setattr(params, attr, getattr(created, attr))
            if created.quantization_config is not None:
                info.config.quantization_config = created.quantization_config
            if created.hnsw_config is not None:
                hnsw = info.config.hnsw_config.model_dump(exclude_none=True)
                hnsw.update(created.hnsw_config.model_dump(exclude_none=True))
                info.config.hnsw_config = models.HnswConfig(**hnsw)
        for field_name, schema in indexes.items():
            data_type = schema if isinstance(schema, models.PayloadSchemaType) else schema.type
            params_ = None if isinstance(schema, models.PayloadSchemaType) else schema
            info.payload_schema[field_name] = models.PayloadIndexInfo(
                data_type=data_type, params=params_, points=info.points_count or 0
            )
        return info

    def _api_create_collection(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        cc = self._parse(models.CreateCollection, body)
        name = g["c"]
        with self.lock:
            self.local.create_collection(
                name,
                vectors_config=cc.vectors,
                sparse_vectors_config=cc.sparse_vectors,
                metadata=cc.metadata,
            )
            self._created[name] = cc
            self._indexes[name] = {}
        return True

    def _api_update_collection(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        upd = self._parse(models.UpdateCollection, body)
        with self.lock:
            return self.local.update_collection(
                g["c"],
                vectors_config=upd.vectors,
                sparse_vectors_config=upd.sparse_vectors,
                metadata=upd.metadata,
            )

    def _api_delete_collection(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            existed = self.local.delete_collection(g["c"])
            self._created.pop(g["c"], None)
            self._indexes.pop(g["c"], None)
        return existed

    def _api_upsert(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        result = self._update_result(rec.params)
        name = g["c"]
        if not self.store:
            if self.validate_no_store:
                ops = _POINT_INSERT.validate_json(body)
                n = len(ops.points) if isinstance(ops, models.PointsList) else len(ops.batch.ids)
            else:
                try:
                    doc = pydantic_core.from_json(body)  # ~4x faster than json.loads here
                    n = len(doc["points"]) if "points" in doc else len(doc["batch"]["ids"])
                except (ValueError, KeyError, TypeError) as e:
                    raise _HttpError(400, f"Format error in JSON body: {e!s}") from e
            rec.points = n
            with self.lock:
                self._require_collection(name)
            with self._stats_lock:
                self._stats.points_received += n
                self._stats.points_upserted += n
                self._stats.upserts_applied += 1
            return result
        ops = _POINT_INSERT.validate_json(body)
        if isinstance(ops, models.PointsList):
            points: Any = self._infer(ops.points)
            n = len(ops.points)
        else:
            points = ops.batch
            n = len(ops.batch.ids)
        rec.points = n
        with self._stats_lock:
            self._stats.points_received += n
        try:
            with self.lock:
                self._require_collection(name)
                self.local.upsert(
                    name,
                    points=points,
                    update_filter=ops.update_filter,
                    update_mode=getattr(ops, "update_mode", None),
                )
        except (_HttpError, ValueError, TypeError, KeyError, IndexError, AssertionError):
            with self._stats_lock:
                self._stats.points_rejected += n
            raise
        with self._stats_lock:
            self._stats.points_upserted += n
            self._stats.upserts_applied += 1
        return result

    def _infer(self, points: list[models.PointStruct]) -> list[models.PointStruct]:
        """Replace inference objects by vectors, each distinct object once per request."""
        kinds = (models.Document, models.Image, models.InferenceObject)
        computed: dict[str, Any] = {}
        objects = 0
        out = []
        for point in points:
            vector = point.vector
            if not isinstance(vector, dict) or not any(
                isinstance(v, kinds) for v in vector.values()
            ):
                out.append(point)
                continue
            if self.inference is None:
                raise _HttpError(400, "Inference is not enabled on this server")
            resolved = {}
            for name, value in vector.items():
                if isinstance(value, kinds):
                    objects += 1
                    key = value.model_dump_json()
                    if key not in computed:
                        computed[key] = self.inference(value)
                    resolved[name] = computed[key]
                else:
                    resolved[name] = value
            out.append(point.model_copy(update={"vector": resolved}))
        with self._stats_lock:
            self._stats.inference_objects += objects
            self._stats.inference_computed += len(computed)
        return out

    def _api_retrieve(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.PointRequest, body)
        with self.lock:
            return self.local.retrieve(
                g["c"],
                ids=req.ids,
                with_payload=True if req.with_payload is None else req.with_payload,
                with_vectors=False if req.with_vector is None else req.with_vector,
            )

    def _api_get_point(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        point_id = _parse_point_id(g["id"])
        with self.lock:
            records = self.local.retrieve(g["c"], ids=[point_id], with_vectors=True)
        if not records:
            raise _HttpError(404, f"Not found: No point with id {g['id']} found")
        return records[0]

    def _api_scroll(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.ScrollRequest, body)
        with self.lock:
            points, next_offset = self.local.scroll(
                g["c"],
                scroll_filter=req.filter,
                limit=10 if req.limit is None else req.limit,
                order_by=req.order_by,
                offset=req.offset,
                with_payload=True if req.with_payload is None else req.with_payload,
                with_vectors=False if req.with_vector is None else req.with_vector,
            )
        return models.ScrollResult(points=points, next_page_offset=next_offset)

    def _api_count(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.CountRequest, body)
        with self.lock:
            return self.local.count(
                g["c"], count_filter=req.filter, exact=True if req.exact is None else req.exact
            )

    def _api_delete_points(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        selector = _POINTS_SELECTOR.validate_json(body)
        result = self._update_result(rec.params)
        with self.lock:
            self._require_collection(g["c"])
            self.local.delete(g["c"], points_selector=selector)
        return result

    def _query_kwargs(self, req: models.QueryRequest) -> dict[str, Any]:
        return {
            "query": req.query,
            "using": req.using,
            "prefetch": req.prefetch,
            "query_filter": req.filter,
            "search_params": req.params,
            "limit": 10 if req.limit is None else req.limit,
            "offset": req.offset,
            "with_payload": False if req.with_payload is None else req.with_payload,
            "with_vectors": False if req.with_vector is None else req.with_vector,
            "score_threshold": req.score_threshold,
            "lookup_from": req.lookup_from,
        }

    def _api_query(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.QueryRequest, body)
        with self.lock:
            return self.local.query_points(g["c"], **self._query_kwargs(req))

    def _api_query_batch(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        batch = self._parse(models.QueryRequestBatch, body)
        with self.lock:
            return [
                self.local.query_points(g["c"], **self._query_kwargs(req)) for req in batch.searches
            ]

    def _api_create_index(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.CreateFieldIndex, body)
        result = self._update_result(rec.params)
        name = g["c"]
        with self.lock:
            self._require_collection(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "payload indexes have no effect"
                self.local.create_payload_index(name, req.field_name, req.field_schema)
            real = self._alias_target(name)
            self._indexes.setdefault(real, {})[req.field_name] = req.field_schema
        return result

    def _api_delete_index(self, rec: RequestRecord, g: dict[str, str], body: bytes) -> Any:
        result = self._update_result(rec.params)
        name = g["c"]
        with self.lock:
            self._require_collection(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.local.delete_payload_index(name, g["field"])
            self._indexes.get(self._alias_target(name), {}).pop(g["field"], None)
        return result

    def _alias_target(self, name: str) -> str:
        aliases = {a.alias_name: a.collection_name for a in self.local.get_aliases().aliases}
        return aliases.get(name, name)


def _validation_message(e: pydantic.ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    more = f" (and {e.error_count() - 1} more errors)" if e.error_count() > 1 else ""
    return f"{first['msg']} at `{loc}`{more}"


def _backend_error(e: Exception) -> _HttpError:
    message = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
    if m := _NOT_FOUND.match(message):
        return _HttpError(404, f"Not found: Collection `{m['name']}` doesn't exist!")
    if m := _EXISTS.match(message):
        return _HttpError(409, f"Wrong input: {m['what']} `{m['name']}` already exists!")
    if not message.startswith(("Wrong input:", "Bad request:")):
        message = f"Wrong input: {message}"
    return _HttpError(400, message)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server in the foreground, e.g. in its own process for a benchmark::

    python tests/qdrant_server.py --port 6333 --no-store
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--path", default=None, help="persist the local mode here")
    parser.add_argument("--no-store", action="store_true", help="count upserted points only")
    parser.add_argument("--validate-no-store", action="store_true")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    server = QdrantTestServer(
        host=args.host,
        port=args.port,
        path=args.path,
        store=not args.no_store,
        validate_no_store=args.validate_no_store,
        api_key=args.api_key,
    ).start()
    print(server.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stats = server.stats
        server.close()
        print(
            f"requests={sum(stats.requests.values())} points_upserted={stats.points_upserted}",
            flush=True,
        )


if __name__ == "__main__":
    main()
