"""Qdrant's REST endpoints for the fake (``fakes.qdrant``): the routing table and the handlers.

Bodies are parsed into qdrant-client's own pydantic models and executed on a local-mode
``QdrantClient`` under one lock (``QdrantBackend.lock``); upserted points are first checked by
Qdrant's engine (``fakes.qdrant_engine``).  Errors are raised as ``HttpError`` with Qdrant's
messages: 400 for bad input (``"Wrong input: Vector dimension error: expected dim: 4, got 3"``,
``"Format error in JSON body: ..."``), 404 for a missing collection
(``"Not found: Collection `x` doesn't exist!"``), 409 for an existing one.  The gRPC fake maps
the same errors to status codes (``backend_error``).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import threading
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import pydantic
import pydantic_core
from qdrant_client import QdrantClient, models

from .qdrant_engine import EngineCheck

__all__ = ["KINDS", "HttpError", "QdrantBackend", "backend_error", "default_version", "match_route"]


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_C = r"/collections/(?P<c>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    (method, re.compile("^" + pattern + "$"), f"{method} {route}", kind)
    for method, pattern, route, kind in [
        ("GET", r"/", "/", "root"),
        ("GET", r"/(?:healthz|livez|readyz)", "/healthz", "health"),
        ("GET", r"/collections", "/collections", "list_collections"),
        ("GET", r"/aliases", "/aliases", "list_aliases"),
        ("POST", r"/collections/aliases", "/collections/aliases", "update_aliases"),
        ("GET", _C, "/collections/{name}", "get_collection"),
        ("PUT", _C, "/collections/{name}", "create_collection"),
        ("PATCH", _C, "/collections/{name}", "update_collection"),
        ("DELETE", _C, "/collections/{name}", "delete_collection"),
        ("GET", _C + "/exists", "/collections/{name}/exists", "exists"),
        ("GET", _C + "/aliases", "/collections/{name}/aliases", "collection_aliases"),
        ("PUT", _C + "/points", "/collections/{name}/points", "upsert"),
        ("POST", _C + "/points", "/collections/{name}/points", "retrieve"),
        ("GET", _C + "/points/(?P<id>[^/]+)", "/collections/{name}/points/{id}", "get_point"),
        ("POST", _C + "/points/scroll", "/collections/{name}/points/scroll", "scroll"),
        ("POST", _C + "/points/count", "/collections/{name}/points/count", "count"),
        ("POST", _C + "/points/delete", "/collections/{name}/points/delete", "delete_points"),
        ("POST", _C + "/points/query", "/collections/{name}/points/query", "query"),
        (
            "POST",
            _C + "/points/query/batch",
            "/collections/{name}/points/query/batch",
            "query_batch",
        ),
        ("PUT", _C + "/index", "/collections/{name}/index", "create_index"),
        (
            "DELETE",
            _C + "/index/(?P<field>[^/]+)",
            "/collections/{name}/index/{field}",
            "delete_index",
        ),
    ]
]

#: Every request kind, for ``Faults.kinds``.
KINDS: frozenset[str] = frozenset(kind for *_, kind in _ROUTES)
#: Kinds a read-only API key may use (Qdrant: GETs and the read-only POSTs).
READ_ONLY_KINDS = frozenset({"retrieve", "scroll", "count", "query", "query_batch"})

_POINT_INSERT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(models.PointInsertOperations)
_POINTS_SELECTOR: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(models.PointsSelector)
_ORDERINGS = frozenset(o.value for o in models.WriteOrdering)
_NOT_FOUND = re.compile(r"^Collection (?P<name>.+) not found$")
_EXISTS = re.compile(r"^(?P<what>Collection|Alias) (?P<name>.+) already exists$")
_INFERENCE_KINDS = (models.Document, models.Image, models.InferenceObject)


def match_route(method: str, path: str) -> tuple[str, str, re.Match[str] | None]:
    """``(route, kind, match)``; an unknown route is ``("METHOD /path", "unknown", None)``."""
    for r_method, pattern, route, kind in _ROUTES:
        if r_method == method and (match := pattern.match(path)):
            return route, kind, match
    return f"{method} {path}", "unknown", None


def default_version() -> str:
    major, minor, *_ = importlib.metadata.version("qdrant-client").split(".")
    return f"{major}.{minor}.0"


def jsonable(obj: Any) -> Any:
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode="json", exclude_none=True)
    if isinstance(obj, list | tuple):
        return [jsonable(o) for o in obj]
    return obj


def _parse_bool(params: dict[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise HttpError(
        400, f"Query deserialize error: {name}: provided string was not `true` or `false`"
    )


def _validation_message(e: pydantic.ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    more = f" (and {e.error_count() - 1} more errors)" if e.error_count() > 1 else ""
    return f"{first['msg']} at `{loc}`{more}"


def backend_error(e: Exception) -> HttpError:
    """A local-mode exception as Qdrant's answer: 404, 409 or 400 with its message."""
    message = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
    if m := _NOT_FOUND.match(message):
        return HttpError(404, f"Not found: Collection `{m['name']}` doesn't exist!")
    if m := _EXISTS.match(message):
        return HttpError(409, f"Wrong input: {m['what']} `{m['name']}` already exists!")
    if not message.startswith(("Wrong input:", "Bad request:")):
        message = f"Wrong input: {message}"
    return HttpError(400, message)


class StatsSink(Protocol):
    def add(self, **counts: int) -> None: ...

    def error(self, message: str) -> None: ...


class QdrantBackend:
    """The endpoints, executed on a local-mode ``QdrantClient`` (``.local``) under ``.lock``."""

    def __init__(
        self,
        stats: StatsSink,
        *,
        path: str | None = None,
        store: bool = True,
        validate_no_store: bool = False,
        version: str | None = None,
        inference: Callable[[Any], Any] | None = None,
    ) -> None:
        self.stats = stats
        self.store = store
        self.validate_no_store = validate_no_store
        self.version = version or default_version()
        self.inference = inference
        self.lock = threading.RLock()
        self.local = QdrantClient(path=path) if path else QdrantClient(location=":memory:")
        self.engine = EngineCheck() if store else None
        self._created: dict[str, models.CreateCollection] = {}
        self._indexes: dict[str, dict[str, Any]] = {}
        self._op_lock = threading.Lock()
        self._op_id = 0

    def clear(self) -> None:
        """Drop every collection (and with them the aliases)."""
        with self.lock:
            for description in self.local.get_collections().collections:
                self.local.delete_collection(description.name)
                if self.engine is not None:
                    self.engine.drop(description.name)
            self._created.clear()
            self._indexes.clear()

    def close(self) -> None:
        with self.lock:
            self.local.close()
            if self.engine is not None:
                self.engine.close()

    @property
    def payload_indexes(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: dict(fields) for name, fields in self._indexes.items()}

    def execute(self, rec: Any, groups: dict[str, str], body: bytes) -> Any:
        """Run ``rec.kind``; raises ``HttpError``; sets ``rec.applied`` when it ran."""
        handler: Callable[[Any, dict[str, str], bytes], Any] = getattr(self, f"_api_{rec.kind}")
        try:
            result = handler(rec, groups, body)
        except HttpError:
            raise
        except pydantic.ValidationError as e:
            raise HttpError(400, f"Format error in JSON body: {_validation_message(e)}") from e
        except json.JSONDecodeError as e:
            raise HttpError(400, f"Format error in JSON body: {e}") from e
        except (ValueError, TypeError, KeyError, IndexError, AssertionError) as e:
            raise backend_error(e) from e
        except Exception as e:
            self.stats.error(f"{rec.route}: {e!r}")
            raise HttpError(500, f"Service internal error: {e}") from e
        rec.applied = True
        return result

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _parse(model: type[pydantic.BaseModel], body: bytes) -> Any:
        return model.model_validate_json(body or b"{}")

    def _update_result(self, params: dict[str, str]) -> models.UpdateResult:
        wait = _parse_bool(params, "wait", False)
        ordering = params.get("ordering")
        if ordering is not None and ordering not in _ORDERINGS:
            raise HttpError(400, f"Query deserialize error: unknown variant `{ordering}`")
        status = models.UpdateStatus.COMPLETED if wait else models.UpdateStatus.ACKNOWLEDGED
        with self._op_lock:
            self._op_id += 1
            return models.UpdateResult(operation_id=self._op_id, status=status)

    def _require_collection(self, name: str) -> None:
        if not self.local.collection_exists(name):
            raise HttpError(404, f"Not found: Collection `{name}` doesn't exist!")

    def _alias_target(self, name: str) -> str:
        aliases = {a.alias_name: a.collection_name for a in self.local.get_aliases().aliases}
        return aliases.get(name, name)

    # --- the endpoints -----------------------------------------------------------------------

    def _api_root(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        return {"title": "qdrant - vector search engine", "version": self.version, "commit": None}

    def _api_health(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        return "healthz check passed"

    def _api_list_collections(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            return self.local.get_collections()

    def _api_list_aliases(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            return self.local.get_aliases()

    def _api_collection_aliases(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            self._require_collection(g["c"])
            return self.local.get_collection_aliases(g["c"])

    def _api_update_aliases(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        op = self._parse(models.ChangeAliasesOperation, body)
        with self.lock:
            return self.local.update_collection_aliases(change_aliases_operations=op.actions)

    def _api_exists(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            return models.CollectionExistence(exists=self.local.collection_exists(g["c"]))

    def _api_get_collection(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
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

    def _api_create_collection(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
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
            if self.engine is not None:
                self.engine.create(name, cc.vectors, cc.sparse_vectors)
        return True

    def _api_update_collection(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        upd = self._parse(models.UpdateCollection, body)
        with self.lock:
            return self.local.update_collection(
                g["c"],
                vectors_config=upd.vectors,
                sparse_vectors_config=upd.sparse_vectors,
                metadata=upd.metadata,
            )

    def _api_delete_collection(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        with self.lock:
            existed = self.local.delete_collection(g["c"])
            if self.engine is not None:
                self.engine.drop(g["c"])
            self._created.pop(g["c"], None)
            self._indexes.pop(g["c"], None)
        return existed

    def _api_upsert(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
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
                    raise HttpError(400, f"Format error in JSON body: {e!s}") from e
            rec.points = n
            with self.lock:
                self._require_collection(name)
            self.stats.add(points_received=n, points_upserted=n, upserts_applied=1)
            return result
        ops = _POINT_INSERT.validate_json(body)
        if isinstance(ops, models.PointsList):
            points: Any = self._infer(ops.points)
            n = len(ops.points)
        else:
            points = ops.batch
            n = len(ops.batch.ids)
        rec.points = n
        self.stats.add(points_received=n)
        try:
            with self.lock:
                self._require_collection(name)
                if self.engine is not None and (
                    refused := self.engine.check(self._alias_target(name), points)
                ):
                    raise HttpError(400, refused)
                self.local.upsert(
                    name,
                    points=points,
                    update_filter=ops.update_filter,
                    update_mode=getattr(ops, "update_mode", None),
                )
        except (HttpError, ValueError, TypeError, KeyError, IndexError, AssertionError):
            self.stats.add(points_rejected=n)
            raise
        self.stats.add(points_upserted=n, upserts_applied=1)
        return result

    def _infer(self, points: list[models.PointStruct]) -> list[models.PointStruct]:
        """Replace inference objects by vectors, each distinct object once per request."""
        computed: dict[str, Any] = {}
        objects = 0
        out = []
        for point in points:
            vector = point.vector
            if not isinstance(vector, dict) or not any(
                isinstance(v, _INFERENCE_KINDS) for v in vector.values()
            ):
                out.append(point)
                continue
            if self.inference is None:
                raise HttpError(400, "Inference is not enabled on this server")
            resolved = {}
            for name, value in vector.items():
                if isinstance(value, _INFERENCE_KINDS):
                    objects += 1
                    key = value.model_dump_json()
                    if key not in computed:
                        computed[key] = self.inference(value)
                    resolved[name] = computed[key]
                else:
                    resolved[name] = value
            out.append(point.model_copy(update={"vector": resolved}))
        self.stats.add(inference_objects=objects, inference_computed=len(computed))
        return out

    def _api_retrieve(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.PointRequest, body)
        with self.lock:
            return self.local.retrieve(
                g["c"],
                ids=req.ids,
                with_payload=True if req.with_payload is None else req.with_payload,
                with_vectors=False if req.with_vector is None else req.with_vector,
            )

    def _api_get_point(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        point_id = int(g["id"]) if g["id"].isdigit() else g["id"]
        with self.lock:
            records = self.local.retrieve(g["c"], ids=[point_id], with_vectors=True)
        if not records:
            raise HttpError(404, f"Not found: No point with id {g['id']} found")
        return records[0]

    def _api_scroll(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
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

    def _api_count(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.CountRequest, body)
        with self.lock:
            return self.local.count(
                g["c"], count_filter=req.filter, exact=True if req.exact is None else req.exact
            )

    def _api_delete_points(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        selector = _POINTS_SELECTOR.validate_json(body)
        result = self._update_result(rec.params)
        with self.lock:
            self._require_collection(g["c"])
            self.local.delete(g["c"], points_selector=selector)
        return result

    @staticmethod
    def _query_kwargs(req: models.QueryRequest) -> dict[str, Any]:
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

    def _api_query(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        req = self._parse(models.QueryRequest, body)
        with self.lock:
            return self.local.query_points(g["c"], **self._query_kwargs(req))

    def _api_query_batch(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        batch = self._parse(models.QueryRequestBatch, body)
        with self.lock:
            return [
                self.local.query_points(g["c"], **self._query_kwargs(req)) for req in batch.searches
            ]

    def _api_create_index(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
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

    def _api_delete_index(self, rec: Any, g: dict[str, str], body: bytes) -> Any:
        result = self._update_result(rec.params)
        name = g["c"]
        with self.lock:
            self._require_collection(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.local.delete_payload_index(name, g["field"])
            self._indexes.get(self._alias_target(name), {}).pop(g["field"], None)
        return result
