"""A small Qdrant gRPC test server on loopback, built from qdrant-client's own generated stubs.

There is no Qdrant binary in the test environment. ``qdrant_client.grpc`` ships the generated
``CollectionsServicer``, ``PointsServicer`` and ``QdrantServicer`` base classes and
``qdrant_client.conversions.conversion`` converts every message both ways (``GrpcToRest``,
``RestToGrpc``), so this module serves the RPCs ``QdrantClient(prefer_grpc=True)`` sends by
converting each request to qdrant-client's REST models and running it on a local-mode client
under a lock, with fault injection by scripted gRPC status codes.

Usage::

    with QdrantTestServer() as rest, QdrantGrpcTestServer(backend=rest) as grpc_server:
        client = grpc_server.client()      # QdrantClient(url=rest.url, prefer_grpc=True, ...)
        grpc_server.push_script(grpc.StatusCode.RESOURCE_EXHAUSTED, None,
                                GrpcFault(grpc.StatusCode.UNAVAILABLE, apply=True))
        grpc_server.stats.calls["Points/Upsert"], grpc_server.stats.faults

With ``backend=`` a ``QdrantTestServer`` (``fakes.qdrant``), both servers serve the same
data: this server uses its ``.local`` client and ``.lock``. Without it, the server owns a
``QdrantClient(":memory:")``.

API (thread-safe)::

    QdrantGrpcTestServer(*, host="127.0.0.1", port=0, backend=None, api_key=None,
                         version=None, fault_rpcs=frozenset({"Points/Upsert"}),
                         max_workers=16, max_message_mb=32, hold_s=5.0)
        .start() -> self   .stop()   .close()   with QdrantGrpcTestServer() as s: ...
        .port  .address ("127.0.0.1:<port>")   .local  .lock
        .url   the backend's REST URL; without a backend http://<host>:<port + 1>, which
               nothing serves (the client only takes the host from it, see the notes)
        .client(**kwargs) -> QdrantClient(url=.url, prefer_grpc=True, grpc_port=.port,
                                          check_compatibility=False)
        .push_script(*items)  one item per in-scope call: None (serve normally), a
                              grpc.StatusCode, or a GrpcFault
        .fault_rpcs           RPCs the script applies to, as "Service/Method" (None: every RPC)
        .script_remaining     .stats (a snapshot)   .reset()  (script, stats; not the data)

    GrpcFault(code, details=None, *, retry_after_s=None, apply=False, hold=False)

Fault semantics (gRPC outcomes are status codes, not HTTP statuses, so this fake keeps its own
small ``GrpcFault`` script rather than ``fakes.faults``):

* ``details`` defaults to a Qdrant-like message for the code (``"Rate limiting exceeded: ..."``
  for RESOURCE_EXHAUSTED, ``"Service unavailable: ..."`` for UNAVAILABLE, ...).
* ``retry_after_s`` sends ``retry-after`` trailing metadata, as Qdrant does with a rate limit.
  qdrant-client turns RESOURCE_EXHAUSTED *with* a non-zero integer ``retry-after`` into
  ``ResourceExhaustedResponse``; without it (or with ``0``) the caller sees a ``grpc.RpcError``.
* ``apply=True`` executes the call first (an upsert is stored), then fails with ``code``.
* ``hold=True`` answers nothing until the client's deadline passes (the client sees its own
  ``DEADLINE_EXCEEDED``), ``hold_s`` elapses or the server stops; ``code`` is sent then.

Served RPCs (everything else answers UNIMPLEMENTED, as the generated servicers do)::

    qdrant.Qdrant/HealthCheck                       (QdrantClient.info())
    qdrant.Collections/{CollectionExists, Get, List, Create, Delete}
    qdrant.Points/{Upsert, Get, Count, Scroll, Delete, CreateFieldIndex}

Backend errors are answered as Qdrant does (``StorageError`` -> ``tonic::Status``):
INVALID_ARGUMENT ``"Wrong input: Vector dimension error: expected dim: 8, got 7"`` (Qdrant's
engine's message, ``fakes.qdrant_engine``), NOT_FOUND ``"Not found: Collection `x` doesn't
exist!"``, ALREADY_EXISTS for an existing collection, INTERNAL for anything unexpected (also
kept in ``stats.errors``). A rejected upsert stores nothing.

Notes on qdrant-client 1.20 with ``prefer_grpc=True`` (checked by tests/test_grpc_sink.py):

* ``collection_exists``, ``get_collection``, ``create_collection``, ``delete_collection``,
  ``create_payload_index``, ``upsert``, ``retrieve``, ``count``, ``scroll`` and ``info`` all go
  over gRPC; nothing the sink does touches REST. The only REST request is the background
  ``GET /`` version check, which ``QdrantTarget.connect()`` turns off
  (``check_compatibility=False``). REST still needs a URL: the gRPC host is taken from it.
* Every call carries the client's ``timeout`` (whole seconds) as its gRPC deadline.
* The client opens its channels lazily, on the first gRPC call.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import grpc as grpcio
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb
from qdrant_client.conversions.conversion import GrpcToRest, RestToGrpc

from .qdrant import QdrantTestServer
from .qdrant_api import backend_error, default_version
from .qdrant_engine import EngineCheck

__all__ = ["GrpcFault", "GrpcStats", "QdrantGrpcTestServer"]

StatusCode = grpcio.StatusCode

_DEFAULT_DETAILS = {
    StatusCode.RESOURCE_EXHAUSTED: "Rate limiting exceeded: Write rate limit exceeded, retry later",
    StatusCode.UNAVAILABLE: "Service unavailable: injected fault",
    StatusCode.DEADLINE_EXCEEDED: "Timeout error: Operation 'upsert' timed out after 1 seconds",
    StatusCode.INTERNAL: "Service internal error: injected fault",
    StatusCode.INVALID_ARGUMENT: "Wrong input: injected fault",
    StatusCode.NOT_FOUND: "Not found: injected fault",
    StatusCode.PERMISSION_DENIED: "Forbidden: injected fault",
    StatusCode.UNAUTHENTICATED: "Invalid api-key",
}

# HTTP status of the REST fake's backend errors (fakes.qdrant_api) -> Qdrant's gRPC code for them.
_HTTP_TO_GRPC = {
    400: StatusCode.INVALID_ARGUMENT,
    404: StatusCode.NOT_FOUND,
    409: StatusCode.ALREADY_EXISTS,
}


@dataclass(frozen=True)
class GrpcFault:
    """One injected gRPC outcome: a status ``code`` (see the module docstring)."""

    code: grpcio.StatusCode
    details: str | None = None
    _: KW_ONLY
    retry_after_s: int | str | None = None
    apply: bool = False
    hold: bool = False

    def __post_init__(self) -> None:
        if self.code == StatusCode.OK:
            raise ValueError("a GrpcFault needs an error code; use None to serve normally")

    @property
    def label(self) -> str:
        return self.code.name + ("+apply" if self.apply else "") + ("+hold" if self.hold else "")

    @property
    def message(self) -> str:
        return self.details or _DEFAULT_DETAILS.get(self.code, f"injected {self.code.name}")

    @classmethod
    def coerce(cls, item: GrpcFault | grpcio.StatusCode | None) -> GrpcFault | None:
        if item is None or isinstance(item, GrpcFault):
            return item
        if isinstance(item, grpcio.StatusCode):
            return cls(item)
        raise TypeError(f"not a fault: {item!r} (use None, a grpc.StatusCode or a GrpcFault)")


@dataclass
class GrpcStats:
    """A snapshot of the server's counters."""

    calls: Counter[str] = field(default_factory=Counter)  # "Points/Upsert" -> n
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (RPC, code name)
    faults: Counter[str] = field(default_factory=Counter)  # GrpcFault.label -> n
    upserts_applied: int = 0
    points_upserted: int = 0  # points in applied upserts (a retried batch counts again)
    points_rejected: int = 0  # points in upserts the backend refused
    max_concurrent_seen: int = 0
    errors: list[str] = field(default_factory=list)  # unexpected backend exceptions


class _Abort(Exception):
    def __init__(self, code: grpcio.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class QdrantGrpcTestServer:
    """Qdrant's gRPC API on a ``grpc.server`` thread pool, backed by a local-mode client."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backend: QdrantTestServer | None = None,
        api_key: str | None = None,
        version: str | None = None,
        fault_rpcs: frozenset[str] | None = frozenset({"Points/Upsert"}),
        max_workers: int = 16,
        max_message_mb: int = 32,
        hold_s: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.backend = backend
        self.api_key = api_key
        self.version = version or default_version()
        self.fault_rpcs = fault_rpcs
        self.max_workers = max_workers
        self.max_message_mb = max_message_mb
        self.hold_s = hold_s
        if backend is not None:
            self.local: QdrantClient = backend.local
            self.lock: Any = backend.lock
            self.engine: EngineCheck | None = backend.engine
            self._owns_local = False
        else:
            self.local = QdrantClient(location=":memory:")
            self.lock = threading.RLock()
            self.engine = EngineCheck()
            self._owns_local = True
        self._stats_lock = threading.Lock()
        self._stats = GrpcStats()
        self._script: list[GrpcFault | None] = []
        self._in_flight = 0
        self._op_id = 0
        self._stop_event = threading.Event()
        self._server: grpcio.Server | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> QdrantGrpcTestServer:
        if self._server is not None:
            return self
        self._stop_event.clear()
        size = self.max_message_mb * 1024 * 1024
        server = grpcio.server(
            futures.ThreadPoolExecutor(max_workers=self.max_workers),
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                ("grpc.so_reuseport", 0),
            ],
        )
        pb.add_QdrantServicer_to_server(_Qdrant(self), server)
        pb.add_CollectionsServicer_to_server(_Collections(self), server)
        pb.add_PointsServicer_to_server(_Points(self), server)
        bound = server.add_insecure_port(f"{self.host}:{self.port}")
        if bound == 0:
            raise OSError(f"could not bind {self.host}:{self.port}")
        self.port = bound  # a restart rebinds the same port
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        """Stop serving (data is kept); held calls are released."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop_event.set()
        server.stop(grace).wait(5.0)

    def close(self) -> None:
        self.stop()
        if self._owns_local:
            with self.lock:
                self.local.close()
                if self.engine is not None:
                    self.engine.close()

    def __enter__(self) -> QdrantGrpcTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The REST URL clients are given (the gRPC host is parsed from it)."""
        if self.backend is not None:
            return self.backend.url
        return f"http://{self.host}:{self.port + 1}"

    def client(self, **kwargs: Any) -> QdrantClient:
        """A gRPC ``QdrantClient`` for this server (no REST version check)."""
        kwargs.setdefault("check_compatibility", False)
        if self.api_key is not None:
            kwargs.setdefault("api_key", self.api_key)
            kwargs.setdefault("https", False)
        return QdrantClient(url=self.url, prefer_grpc=True, grpc_port=self.port, **kwargs)

    # --- faults and stats --------------------------------------------------------------------

    def push_script(self, *items: GrpcFault | grpcio.StatusCode | None) -> None:
        script = [GrpcFault.coerce(item) for item in items]
        with self._stats_lock:
            self._script.extend(script)

    @property
    def script_remaining(self) -> int:
        with self._stats_lock:
            return len(self._script)

    @property
    def stats(self) -> GrpcStats:
        with self._stats_lock:
            return copy.deepcopy(self._stats)  # a snapshot

    def reset(self) -> None:
        """Clear the script and the stats (the data belongs to the backend: reset it there)."""
        with self._stats_lock:
            self._script.clear()
            self._stats = GrpcStats(max_concurrent_seen=self._in_flight)

    # --- serving -----------------------------------------------------------------------------

    def _serve(self, rpc: str, context: grpcio.ServicerContext, handler: Callable[[], Any]) -> Any:
        with self._stats_lock:
            self._stats.calls[rpc] += 1
            self._in_flight += 1
            self._stats.max_concurrent_seen = max(self._stats.max_concurrent_seen, self._in_flight)
            fault = None
            if (self.fault_rpcs is None or rpc in self.fault_rpcs) and self._script:
                fault = self._script.pop(0)
            if fault is not None:
                self._stats.faults[fault.label] += 1
        started = time.perf_counter()
        try:
            self._check_auth(context)
            if fault is not None and fault.hold:
                self._hold(context)
            if fault is not None and not fault.apply:
                raise _Abort(fault.code, fault.message)
            result = self._execute(rpc, handler)
            if fault is not None:  # apply=True: done, and answered with an error anyway
                raise _Abort(fault.code, fault.message)
        except _Abort as abort:
            self._count(rpc, abort.code)
            if fault is not None and fault.retry_after_s is not None:
                context.set_trailing_metadata((("retry-after", str(fault.retry_after_s)),))
            context.abort(abort.code, abort.message)
        finally:
            with self._stats_lock:
                self._in_flight -= 1
        self._count(rpc, StatusCode.OK)
        if hasattr(result, "time"):
            result.time = time.perf_counter() - started
        return result

    def _count(self, rpc: str, code: grpcio.StatusCode) -> None:
        with self._stats_lock:
            self._stats.codes[(rpc, code.name)] += 1

    def _check_auth(self, context: grpcio.ServicerContext) -> None:
        if self.api_key is None:
            return
        metadata = dict(context.invocation_metadata())
        key = metadata.get("api-key")
        bearer = metadata.get("authorization", "")
        if key != self.api_key and bearer != f"Bearer {self.api_key}":
            raise _Abort(StatusCode.UNAUTHENTICATED, "Invalid api-key")

    def _hold(self, context: grpcio.ServicerContext) -> None:
        deadline = time.monotonic() + self.hold_s
        while context.is_active() and time.monotonic() < deadline:
            if self._stop_event.wait(0.02):
                return

    def _execute(self, rpc: str, handler: Callable[[], Any]) -> Any:
        try:
            return handler()
        except _Abort:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AssertionError) as e:
            http = backend_error(e)  # the REST server's mapping: 400 / 404 / 409 + message
            code = _HTTP_TO_GRPC.get(http.status, StatusCode.INVALID_ARGUMENT)
            raise _Abort(code, http.message) from e
        except Exception as e:
            with self._stats_lock:
                self._stats.errors.append(f"{rpc}: {e!r}")
            raise _Abort(StatusCode.INTERNAL, f"Service internal error: {e}") from e

    def _next_op_id(self) -> int:
        with self._stats_lock:
            self._op_id += 1
            return self._op_id

    def _update_result(self, wait: bool) -> pb.UpdateResult:
        status = models.UpdateStatus.COMPLETED if wait else models.UpdateStatus.ACKNOWLEDGED
        return RestToGrpc.convert_update_result(
            models.UpdateResult(operation_id=self._next_op_id(), status=status)
        )

    @contextlib.contextmanager
    def _collection(self, name: str) -> Iterator[None]:
        """Hold the lock, and answer NOT_FOUND like Qdrant for a missing collection."""
        with self.lock:
            if not self.local.collection_exists(name):
                raise _Abort(StatusCode.NOT_FOUND, f"Not found: Collection `{name}` doesn't exist!")
            yield

    def _on_upsert(self, n: int, *, applied: bool) -> None:
        with self._stats_lock:
            if applied:
                self._stats.upserts_applied += 1
                self._stats.points_upserted += n
            else:
                self._stats.points_rejected += n


def _opt(message: Any, name: str, convert: Callable[[Any], Any], default: Any = None) -> Any:
    return convert(getattr(message, name)) if message.HasField(name) else default


class _Qdrant(pb.QdrantServicer):
    def __init__(self, app: QdrantGrpcTestServer) -> None:
        self._app = app

    def HealthCheck(self, request: Any, context: Any) -> Any:
        app = self._app
        return app._serve(
            "Qdrant/HealthCheck",
            context,
            lambda: pb.HealthCheckReply(title="qdrant - vector search engine", version=app.version),
        )


class _Collections(pb.CollectionsServicer):
    def __init__(self, app: QdrantGrpcTestServer) -> None:
        self._app = app

    def CollectionExists(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            with app.lock:
                exists = app.local.collection_exists(request.collection_name)
            return pb.CollectionExistsResponse(result=pb.CollectionExists(exists=exists))

        return app._serve("Collections/CollectionExists", context, handler)

    def Get(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            with app._collection(request.collection_name):
                info = app.local.get_collection(request.collection_name)
            return pb.GetCollectionInfoResponse(result=RestToGrpc.convert_collection_info(info))

        return app._serve("Collections/Get", context, handler)

    def List(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            with app.lock:
                names = [c.name for c in app.local.get_collections().collections]
            return pb.ListCollectionsResponse(
                collections=[pb.CollectionDescription(name=name) for name in names]
            )

        return app._serve("Collections/List", context, handler)

    def Create(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            vectors = _opt(request, "vectors_config", GrpcToRest.convert_vectors_config)
            sparse = _opt(request, "sparse_vectors_config", GrpcToRest.convert_sparse_vector_config)
            metadata = GrpcToRest.convert_payload(request.metadata) if request.metadata else None
            with app.lock:
                if app.local.collection_exists(request.collection_name):
                    raise _Abort(
                        StatusCode.ALREADY_EXISTS,
                        f"Wrong input: Collection `{request.collection_name}` already exists!",
                    )
                app.local.create_collection(
                    request.collection_name,
                    vectors_config=vectors if vectors is not None else {},
                    sparse_vectors_config=sparse,
                    metadata=metadata,
                )
                if app.engine is not None:
                    app.engine.create(request.collection_name, vectors, sparse)
            return pb.CollectionOperationResponse(result=True)

        return app._serve("Collections/Create", context, handler)

    def Delete(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            with app.lock:
                existed = app.local.delete_collection(request.collection_name)
                if app.engine is not None:
                    app.engine.drop(request.collection_name)
            return pb.CollectionOperationResponse(result=bool(existed))

        return app._serve("Collections/Delete", context, handler)


class _Points(pb.PointsServicer):
    def __init__(self, app: QdrantGrpcTestServer) -> None:
        self._app = app

    def Upsert(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            points = [GrpcToRest.convert_point_struct(p) for p in request.points]
            update_filter = _opt(request, "update_filter", GrpcToRest.convert_filter)
            update_mode = _opt(request, "update_mode", GrpcToRest.convert_update_mode)
            try:
                with app._collection(request.collection_name):
                    if app.engine is not None and (
                        refused := app.engine.check(request.collection_name, points)
                    ):
                        raise _Abort(StatusCode.INVALID_ARGUMENT, refused)
                    app.local.upsert(
                        request.collection_name,
                        points=points,
                        update_filter=update_filter,
                        update_mode=update_mode,
                    )
            except Exception:
                app._on_upsert(len(points), applied=False)
                raise
            app._on_upsert(len(points), applied=True)
            return pb.PointsOperationResponse(result=app._update_result(request.wait))

        return app._serve("Points/Upsert", context, handler)

    def Delete(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            selector = GrpcToRest.convert_points_selector(request.points)
            with app._collection(request.collection_name):
                app.local.delete(request.collection_name, points_selector=selector)
            return pb.PointsOperationResponse(result=app._update_result(request.wait))

        return app._serve("Points/Delete", context, handler)

    def Get(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            with app._collection(request.collection_name):
                records = app.local.retrieve(
                    request.collection_name,
                    ids=[GrpcToRest.convert_point_id(i) for i in request.ids],
                    with_payload=_with_payload(request),
                    with_vectors=_with_vectors(request),
                )
            return pb.GetResponse(result=[RestToGrpc.convert_retrieved_point(r) for r in records])

        return app._serve("Points/Get", context, handler)

    def Count(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            with app._collection(request.collection_name):
                result = app.local.count(
                    request.collection_name,
                    count_filter=_opt(request, "filter", GrpcToRest.convert_filter),
                    exact=request.exact if request.HasField("exact") else True,
                )
            return pb.CountResponse(result=RestToGrpc.convert_count_result(result))

        return app._serve("Points/Count", context, handler)

    def Scroll(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            with app._collection(request.collection_name):
                records, next_offset = app.local.scroll(
                    request.collection_name,
                    scroll_filter=_opt(request, "filter", GrpcToRest.convert_filter),
                    limit=request.limit if request.HasField("limit") else 10,
                    order_by=_opt(request, "order_by", GrpcToRest.convert_order_by),
                    offset=_opt(request, "offset", GrpcToRest.convert_point_id),
                    with_payload=_with_payload(request),
                    with_vectors=_with_vectors(request),
                )
            response = pb.ScrollResponse(
                result=[RestToGrpc.convert_retrieved_point(r) for r in records]
            )
            if next_offset is not None:
                response.next_page_offset.CopyFrom(
                    RestToGrpc.convert_extended_point_id(next_offset)
                )
            return response

        return app._serve("Points/Scroll", context, handler)

    def CreateFieldIndex(self, request: Any, context: Any) -> Any:
        app = self._app

        def handler() -> Any:
            # grpc.FieldType "FieldTypeKeyword" -> rest PayloadSchemaType "keyword"
            name = pb.FieldType.Name(request.field_type).removeprefix("FieldType").lower()
            with app._collection(request.collection_name), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "payload indexes have no effect"
                app.local.create_payload_index(
                    request.collection_name, request.field_name, models.PayloadSchemaType(name)
                )
            return pb.PointsOperationResponse(result=app._update_result(request.wait))

        return app._serve("Points/CreateFieldIndex", context, handler)


def _with_payload(request: Any) -> Any:
    if not request.HasField("with_payload"):
        return True
    return GrpcToRest.convert_with_payload_selector(request.with_payload)


def _with_vectors(request: Any) -> Any:
    if not request.HasField("with_vectors"):
        return False
    return GrpcToRest.convert_with_vectors_selector(request.with_vectors)
