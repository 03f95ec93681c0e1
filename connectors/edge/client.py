"""``EdgeClient``: Qdrant's own engine in this process (qdrant-edge), behind the part of
qdrant-client's API that qdrant-beam uses, so the sink, the collection check, the reindex and
the query run on it unchanged.

One edge shard per collection under one folder (``folder.py``); aliases in the folder's
manifest, switched atomically. Engine errors (bare ``Exception`` with Qdrant's message, or a
Rust panic) become the package's taxonomy here: a rejected point is ``RejectedPoints`` with
the engine's own message, so the sink bisects the batch and the rest of it lands. A folder
another process has open is refused with a clear error (edge locks its WAL).

Thread-safe: edge serialises calls itself; opening and closing shards is locked here.

Memory: edge writes through shared memory maps, so the pages of every point written would stay
in the job's RSS until the shard closes; every few thousand points upserted they are
handed back to the kernel (``residency.py``), and the job's RSS stays flat as the store grows.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import qdrant_edge as edge
from qdrant_client import models

from qdrant_beam.connectors.edge import convert
from qdrant_beam.connectors.edge.folder import Manifest, kind
from qdrant_beam.connectors.edge.residency import PageRelease
from qdrant_beam.connectors.qdrant_errors import RejectedPoints
from qdrant_beam.io.errors import SpecError

__all__ = ["EdgeClient"]

#: Engine messages that mean "this input is wrong", as Qdrant's server answers them with 400.
_INPUT_ERRORS = (
    "Vector dimension error",
    "Not existing vector name error",
    "Wrong usage of sparse vectors",
    "Wrong input",
    "Validation failed",
)


class EdgeClient:
    """A folder of edge shards, spoken to like a ``QdrantClient``."""

    def __init__(self, path: str, *, release_every: int = 4096) -> None:
        """``release_every``: points upserted between two hand-backs of the pages written
        (``residency.py``); 0: never."""
        self.path = Path(path)
        found = kind(self.path)
        if found == "local":
            raise SpecError(
                f"{path} was written by qdrant-client's local mode, not by the embedded Qdrant "
                f"engine (qdrant-edge). Open it with engine='local' (--qdrant-engine local), or "
                f"move its data: re-ingest into a new folder"
            )
        if found == "foreign":
            raise SpecError(
                f"{path} is not an embedded Qdrant store (it has no qdrant-beam-edge.json) and "
                f"is not empty; give a new or empty folder"
            )
        self._manifest = Manifest(self.path)
        self._manifest.create()
        self._shards: dict[str, Any] = {}
        self._lock = threading.RLock()
        self.pages = PageRelease(self.path, release_every)

    def __repr__(self) -> str:
        return f"EdgeClient({str(self.path)!r})"

    # -- shards -------------------------------------------------------------------------------
    def _dir(self, collection: str) -> Path:
        if not collection or "/" in collection or collection.startswith("."):
            raise SpecError(f"collection name {collection!r} cannot name a folder")
        return self.path / "collections" / collection

    def _name(self, name: str) -> str:
        """A collection's name, through an alias."""
        return self._manifest.aliases().get(name, name)

    def _shard(self, name: str) -> Any:
        collection = self._name(name)
        with self._lock:
            shard = self._shards.get(collection)
            if shard is not None:
                return shard
            folder = self._dir(collection)
            if not (folder / "edge_config.json").is_file():
                raise RejectedPoints(f"Not found: Collection `{name}` doesn't exist!", 404)
            with _engine_errors(f"opening {folder}"):
                shard = edge.EdgeShard.load(str(folder))
            self._shards[collection] = shard
            return shard

    def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                with contextlib.suppress(Exception):
                    shard.close()
            self._shards.clear()

    # -- collections --------------------------------------------------------------------------
    def collection_exists(self, collection_name: str) -> bool:
        return (self._dir(self._name(collection_name)) / "edge_config.json").is_file()

    def get_collections(self) -> Any:
        root = self.path / "collections"
        names = sorted(p.name for p in root.iterdir() if (p / "edge_config.json").is_file())
        return SimpleNamespace(collections=[SimpleNamespace(name=n) for n in names])

    def get_collection(self, collection_name: str) -> Any:
        folder = self._dir(self._name(collection_name))
        try:
            stored = json.loads((folder / "edge_config.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RejectedPoints(
                f"Not found: Collection `{collection_name}` doesn't exist!", 404
            ) from None
        dense, sparse = convert.vector_params(stored)
        params = SimpleNamespace(vectors=dense, sparse_vectors=sparse or None)
        shard = self._shard(collection_name)
        with _engine_errors("reading the collection"):
            info = shard.info()
        indexes = {
            field: SimpleNamespace(data_type=convert.qdrant_schema(index.data_type))
            for field, index in info.payload_schema.items()
        }
        return SimpleNamespace(
            config=SimpleNamespace(params=params),
            points_count=info.points_count,
            payload_schema=indexes,
        )

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Any = None,
        sparse_vectors_config: Any = None,
        **_: Any,
    ) -> bool:
        if isinstance(vectors_config, models.VectorParams):
            vectors_config = {"": vectors_config}
        folder = self._dir(collection_name)
        if (folder / "edge_config.json").is_file():
            raise RejectedPoints(
                f"Wrong input: Collection `{collection_name}` already exists!", 409
            )
        config = convert.edge_config(vectors_config or {}, sparse_vectors_config)
        with self._lock, _engine_errors(f"creating {folder}"):
            self._shards[collection_name] = edge.EdgeShard.create(str(folder), config)
        return True

    def delete_collection(self, collection_name: str, **_: Any) -> bool:
        folder = self._dir(collection_name)
        with self._lock:
            shard = self._shards.pop(collection_name, None)
            if shard is not None:
                shard.close()
            aliases = self._manifest.aliases()
            kept = {a: c for a, c in aliases.items() if c != collection_name}
            if kept != aliases:
                self._manifest.set_aliases(kept)
            if not folder.exists():
                return False
            shutil.rmtree(folder)
            return True

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: Any = None, **_: Any
    ) -> Any:
        operation = edge.UpdateOperation.create_field_index(
            field_name, convert.payload_schema(field_schema)
        )
        with _engine_errors("creating a payload index"):
            self._shard(collection_name).update(operation)
        return SimpleNamespace(status="completed")

    # -- aliases ------------------------------------------------------------------------------
    def get_aliases(self) -> Any:
        aliases = self._manifest.aliases()
        return SimpleNamespace(
            aliases=[
                models.AliasDescription(alias_name=a, collection_name=c) for a, c in aliases.items()
            ]
        )

    def update_collection_aliases(self, change_aliases_operations: Sequence[Any], **_: Any) -> bool:
        """All the changes in one atomic replace of the manifest."""
        with self._lock:
            aliases = self._manifest.aliases()
            for operation in change_aliases_operations:
                if isinstance(operation, models.DeleteAliasOperation):
                    aliases.pop(operation.delete_alias.alias_name, None)
                elif isinstance(operation, models.CreateAliasOperation):
                    create = operation.create_alias
                    if not self.collection_exists(create.collection_name):
                        raise RejectedPoints(
                            f"Not found: Collection `{create.collection_name}` doesn't exist!", 404
                        )
                    aliases[create.alias_name] = create.collection_name
                elif isinstance(operation, models.RenameAliasOperation):
                    rename = operation.rename_alias
                    aliases[rename.new_alias_name] = aliases.pop(rename.old_alias_name)
            self._manifest.set_aliases(aliases)
        return True

    # -- points -------------------------------------------------------------------------------
    def upsert(self, collection_name: str, points: Sequence[models.PointStruct], **_: Any) -> Any:
        """Every point, or ``RejectedPoints`` with the engine's message. Edge applies a batch
        point by point, so some may land before the bad one: upserts are idempotent, and the
        sink writes the good ones again when it isolates the bad one."""
        shard = self._shard(collection_name)
        converted = [convert.edge_point(p) for p in points]
        with _engine_errors("upsert"):
            shard.update(edge.UpdateOperation.upsert_points(converted))
        self.pages.wrote(len(converted))
        return SimpleNamespace(status="completed")

    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[Any],
        with_payload: Any = True,
        with_vectors: Any = False,
        **_: Any,
    ) -> list[models.Record]:
        shard = self._shard(collection_name)
        with _engine_errors("retrieve"):
            found = shard.retrieve(
                list(ids), convert.payload_selector(with_payload), _with_vectors(with_vectors)
            )
        return [convert.record(r) for r in found]

    def scroll(
        self,
        collection_name: str,
        scroll_filter: models.Filter | None = None,
        limit: int = 10,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        **_: Any,
    ) -> tuple[list[models.Record], Any]:
        request = edge.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=convert.edge_filter(scroll_filter),
            with_payload=convert.payload_selector(with_payload),
            with_vector=_with_vectors(with_vectors),
        )
        with _engine_errors("scroll"):
            found, next_offset = self._shard(collection_name).scroll(request)
        return [convert.record(r) for r in found], convert.qdrant_id(next_offset) if (
            next_offset is not None
        ) else None

    def count(
        self, collection_name: str, count_filter: models.Filter | None = None, exact: bool = True
    ) -> Any:
        request = edge.CountRequest(exact=exact, filter=convert.edge_filter(count_filter))
        with _engine_errors("count"):
            return SimpleNamespace(count=self._shard(collection_name).count(request))

    def delete(self, collection_name: str, points_selector: Any, **_: Any) -> Any:
        if isinstance(points_selector, models.PointIdsList):
            operation = edge.UpdateOperation.delete_points(list(points_selector.points))
        elif isinstance(points_selector, (models.FilterSelector, models.Filter)):
            chosen = (
                points_selector.filter
                if isinstance(points_selector, models.FilterSelector)
                else points_selector
            )
            flt = convert.edge_filter(chosen)
            if flt is None:
                raise SpecError("a delete by filter needs a filter")
            operation = edge.UpdateOperation.delete_points_by_filter(flt)
        else:  # a list of ids
            operation = edge.UpdateOperation.delete_points(list(points_selector))
        with _engine_errors("delete"):
            self._shard(collection_name).update(operation)
        return SimpleNamespace(status="completed")

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: str | None = None,
        prefetch: Any = None,
        query_filter: models.Filter | None = None,
        limit: int = 10,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        **_: Any,
    ) -> Any:
        request = edge.QueryRequest(
            limit=limit,
            query=convert.edge_query(query, using),
            prefetches=convert.prefetches(prefetch),
            filter=convert.edge_filter(query_filter),
            with_payload=convert.payload_selector(with_payload),
            with_vector=_with_vectors(with_vectors),
            score_threshold=score_threshold,
        )
        with _engine_errors("query"):
            found = self._shard(collection_name).query(request)
        return SimpleNamespace(points=[convert.scored_point(p) for p in found])

    def query_points_groups(
        self,
        collection_name: str,
        group_by: str,
        limit: int = 10,
        group_size: int = 3,
        **query: Any,
    ) -> Any:
        """Hits grouped by a payload field (edge has no grouping): ask for more hits until
        ``limit`` groups are full or the collection has no more."""
        fetch = limit * group_size * 4
        while True:
            query["with_payload"] = True
            hits = self.query_points(collection_name, limit=fetch, **query).points
            groups: dict[Any, list[models.ScoredPoint]] = {}
            for hit in hits:
                key = (hit.payload or {}).get(group_by)
                if key is None:
                    continue
                members = groups.setdefault(key, [])
                if len(members) < group_size:
                    members.append(hit)
            if len(groups) >= limit or len(hits) < fetch:
                break
            fetch *= 4
        return SimpleNamespace(
            groups=[
                SimpleNamespace(id=key, hits=members)
                for key, members in list(groups.items())[:limit]
            ]
        )

    def flush(self) -> None:
        """Sync every open shard to disk (the WAL already keeps what was acknowledged)."""
        with self._lock:
            for shard in self._shards.values():
                shard.flush()


def _with_vectors(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return list(value)
    return bool(value)


@contextlib.contextmanager
def _engine_errors(doing: str) -> Iterator[None]:
    """Edge's errors as the package's: bare ``Exception``s carry Qdrant's own message, and a
    Rust panic is a ``BaseException``."""
    try:
        yield
    except (SpecError, RejectedPoints):
        raise
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "WouldBlock" in message or "failed to open WAL" in message:
            raise SpecError(
                f"the embedded Qdrant folder is already open in another process ({message}). "
                f"An embedded store allows one process per folder: run on FnApiRunner or "
                f"DirectRunner in_memory/multi_threading mode, or write to a Qdrant server "
                f"with url=..."
            ) from None
        if type(exc).__name__ == "PanicException" or message.startswith(_INPUT_ERRORS):
            raise RejectedPoints(f"Wrong input: {message}", 400) from None
        if isinstance(exc, (TypeError, ValueError, OverflowError)):
            raise RejectedPoints(f"Wrong input: {message}", 400) from None
        raise SpecError(f"embedded Qdrant failed {doing}: {message}") from None
