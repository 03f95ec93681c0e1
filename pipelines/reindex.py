"""Incremental reindex: skip records whose content did not change, delete what vanished.

Every point carries ``CONTENT_HASH_FIELD`` in its payload (``content_hash``). Before mapping,
records are keyed by point id and their stored hashes looked up in batches (``retrieve`` by
id, payload selector: that field only, no vectors): unchanged records are dropped before they
are mapped or any model sees them; changed and new ones go on, with their hash, to be embedded
and upserted. With ``delete_missing`` the stored ids are scrolled and joined with the record
ids, and the ids that no longer have a record are deleted. Point ids are deterministic and
upserts idempotent, so a run that crashed is finished by running it again.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PCollection, TaggedOutput
from qdrant_client import models

from qdrant_beam.connectors.calls import QdrantCalls
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.io.errors import InvalidRecord, QdrantBeamError
from qdrant_beam.io.limiter import InFlight, Limiter
from qdrant_beam.io.retry import Retrying, RetryPolicy
from qdrant_beam.io.window import Concurrency
from qdrant_beam.pipelines.content_hash import (
    CONTENT_HASH_FIELD,
    ContentHasher,
    id_key,
    spec_fingerprint,
)
from qdrant_beam.transforms.chunk_points import PARENT_FIELD
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.mapping import RecordMapper, chunk_point_id
from qdrant_beam.transforms.outputs import AnnotatedTransform, windowed
from qdrant_beam.transforms.spec import PointsSpec

__all__ = [
    "CONTENT_HASH_FIELD",
    "REINDEX_NAMESPACE",
    "SKIPPED",
    "DeletePoints",
    "SkipUnchanged",
    "SkippedOutputs",
]

REINDEX_NAMESPACE = "qdrant_beam.reindex"
_SCROLL_PAGE = 1_000
_LOOKUP_BATCH = 500
#: Lookups in flight while the next records are read and hashed.
_LOOKUPS = Concurrency.fixed(2)
_DELETE_BATCH = 512
#: Tag of the lookup's counts of unchanged records.
SKIPPED = "skipped"
#: Tag of the records' own ids when the spec writes chunk points.
PARENTS = "parents"


class _KeyRecord(beam.DoFn):
    """record -> (id, (hash, record)); a record without a usable id goes to dead letters.

    The id looked up is the record's point id, or its first chunk point's (which carries the
    record's hash) when the spec writes chunk points; the record's own id is then also on the
    ``PARENTS`` output, for ``--delete-missing``.
    """

    def __init__(self, spec: PointsSpec) -> None:
        self._spec = spec
        self._fingerprint = spec_fingerprint(spec)

    def setup(self) -> None:
        self._mapper = RecordMapper(self._spec)
        self._hash = ContentHasher(self._fingerprint)

    def process(self, record: Any) -> Iterator[Any]:
        try:
            key = str(self._mapper.point_id(record))  # already canonical, as id_key gives
            digest = self._hash(self._mapper.shaping_part(record))
            if self._spec.chunks is not None:
                yield beam.pvalue.TaggedOutput(PARENTS, key)
                key = chunk_point_id(self._mapper.key(record), 0, self._spec)
        except (QdrantBeamError, TypeError, ValueError) as exc:
            if not isinstance(exc, QdrantBeamError):  # json refused it (mixed-type keys, say)
                exc = InvalidRecord(f"cannot hash the record: {exc}")
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS, FailedRecord.from_exception(record, Stage.MAP, exc)
            )
            return
        yield key, (digest, record)


def _point_ids(keys: Iterable[str]) -> list[Any]:
    """``id_key`` text back to the ids Qdrant takes: unsigned integers or UUID strings."""
    return [int(k) if k.isdigit() else k for k in keys]


class _Lookup(NamedTuple):
    """What one lookup found: the records to embed, and how many of each kind."""

    changed: list[tuple[str, Any]]
    skipped: int
    updated: int
    added: int


class _LookupStored(beam.DoFn):
    """Batches of (id, (hash, record)) -> the new and changed (hash, record).

    A lookup join: one ``retrieve`` per batch, by id, for the stored hash only (no vectors).
    Nothing is shuffled and nothing scans the collection, so the cost follows the input, and
    an unchanged record goes no further than this stage. Up to ``_LOOKUPS_IN_FLIGHT``
    lookups run on threads while the next records are read and hashed.
    """

    def __init__(self, target: QdrantTarget, collection: str, policy: RetryPolicy) -> None:
        self._target = target
        self._collection = collection
        self._policy = policy
        counter = lambda name: Metrics.counter(REINDEX_NAMESPACE, name)  # noqa: E731
        self._skipped = counter("skipped")
        self._updated = counter("updated")
        self._added = counter("added")

    def setup(self) -> None:
        self._client: Any = self._target.connect()
        self._calls = QdrantCalls(self._target, self._client, Retrying(self._policy))
        self._exists = False
        self._exists_lock = threading.Lock()
        self._inflight: InFlight[list[Any], _Lookup] = InFlight(
            self._lookup, Limiter(_LOOKUPS), name="qdrant-beam-lookup"
        )

    def _collection_exists(self) -> bool:
        """Asked until it exists: this job's own writer may create the collection."""
        with self._exists_lock:
            if not self._exists:
                self._exists = self._calls(lambda c: c.collection_exists(self._collection))
            return self._exists

    def _stored(self, keys: list[str]) -> dict[str, str | None]:
        if not self._collection_exists():
            return {}
        selector = models.PayloadSelectorInclude(include=[CONTENT_HASH_FIELD])
        found = self._calls(
            lambda c: c.retrieve(
                self._collection, _point_ids(keys), with_payload=selector, with_vectors=False
            )
        )
        return {id_key(p.id): (p.payload or {}).get(CONTENT_HASH_FIELD) for p in found}

    def _lookup(self, batch: list[tuple[str, tuple[str, Any]]]) -> _Lookup:
        """On a lookup thread; counts go back to ``process``, where Beam's metrics live."""
        stored = self._stored(list(dict.fromkeys(key for key, _ in batch)))
        changed: list[tuple[str, Any]] = []
        skipped = updated = 0
        for key, (digest, record) in batch:
            if key not in stored:
                changed.append((digest, record))
            elif stored[key] == digest:
                skipped += 1
            else:
                updated += 1
                changed.append((digest, record))
        return _Lookup(changed, skipped, updated, len(changed) - updated)

    def process(
        self,
        batch: list[tuple[str, tuple[str, Any]]],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        self._inflight.submit(batch, tag=(window, timestamp))
        yield from self._emit(self._inflight.completed())

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._emit(self._inflight.flush())

    def _emit(self, done: list[tuple[Any, _Lookup | BaseException]]) -> Iterator[Any]:
        for (window, timestamp), outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # Qdrant unreachable after retries: Beam retries the bundle
            self._skipped.inc(outcome.skipped)
            self._updated.inc(outcome.updated)
            self._added.inc(outcome.added)
            for item in outcome.changed:
                yield windowed(item, window, timestamp)
            if outcome.skipped:
                yield windowed(TaggedOutput(SKIPPED, outcome.skipped), window, timestamp)

    def teardown(self) -> None:
        inflight = getattr(self, "_inflight", None)
        if inflight is not None:
            inflight.close()
        if getattr(self, "_client", None) is not None:
            self._target.release(self._client)
            self._client = None


class _ScrollIds(beam.DoFn):
    """Every point id in the collection (no payload, no vectors), or with ``parents`` every
    chunk point's parent id (repeated: the join groups them); nothing if it is missing."""

    def __init__(
        self, target: QdrantTarget, collection: str, policy: RetryPolicy, parents: bool
    ) -> None:
        self._target = target
        self._collection = collection
        self._policy = policy
        self._parents = parents

    def process(self, _: Any) -> Iterator[tuple[str, None]]:
        client = self._target.connect()
        try:
            yield from self._scroll(QdrantCalls(self._target, client, Retrying(self._policy)))
        finally:
            self._target.release(client)

    def _scroll(self, calls: QdrantCalls) -> Iterator[tuple[str, None]]:
        if not calls(lambda c: c.collection_exists(self._collection)):
            return
        offset: Any = None
        while True:
            records, offset = calls(functools.partial(self._page, offset=offset))
            for record in records:
                if self._parents:
                    yield str((record.payload or {}).get(PARENT_FIELD)), None
                else:
                    yield id_key(record.id), None
            if offset is None:
                return

    def _page(self, client: Any, offset: Any) -> Any:
        payload = models.PayloadSelectorInclude(include=[PARENT_FIELD]) if self._parents else False
        return client.scroll(
            self._collection,
            limit=_SCROLL_PAGE,
            offset=offset,
            with_payload=payload,
            with_vectors=False,
        )


class _Missing(beam.DoFn):
    """(id, {records, stored}) -> the id, when it is stored but no record has it any more."""

    def __init__(self) -> None:
        self._missing = Metrics.counter(REINDEX_NAMESPACE, "missing")

    def process(self, joined: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[str]:
        key, parts = joined
        if not any(True for _ in parts["records"]):
            self._missing.inc()
            yield key


class SkippedOutputs(NamedTuple):
    changed: PCollection
    """New and changed records as (content hash, record), for ``FromHashedRecords``."""
    missing: PCollection | None
    """Ids stored in the collection that no record has any more; ``None`` unless
    ``find_missing``."""
    dead_letters: PCollection
    """Records without a usable id or whose content cannot be hashed."""
    skipped: PCollection
    """How many unchanged records each lookup dropped (for progress)."""


class SkipUnchanged(AnnotatedTransform):
    """Records -> (hash, record) for only the new and changed ones; returns
    ``SkippedOutputs``.

    Records are keyed by point id and hashed, then looked up in batches of ``lookup_batch``
    ids. With ``find_missing``, the stored ids are also scrolled and joined with the record
    ids (only ids cross that shuffle) to find the points whose record vanished.
    """

    def __init__(
        self,
        spec: PointsSpec,
        target: QdrantTarget,
        collection: str,
        policy: RetryPolicy | None = None,
        *,
        find_missing: bool = False,
        lookup_batch: int = _LOOKUP_BATCH,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._target = target
        self._collection = collection
        self._policy = policy or RetryPolicy()
        self._find_missing = find_missing
        self._lookup_batch = lookup_batch

    def expand(self, records: PCollection) -> SkippedOutputs:
        keyed = records | "Key" >> beam.ParDo(_KeyRecord(self._spec)).with_outputs(
            DEAD_LETTERS, PARENTS, main="keyed"
        )
        changed = (
            keyed.keyed
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=self._lookup_batch, max_batch_size=self._lookup_batch
            )
            | "LookupStoredHashes"
            >> beam.ParDo(_LookupStored(self._target, self._collection, self._policy)).with_outputs(
                SKIPPED, main="changed"
            )
        )
        return SkippedOutputs(
            changed.changed, self._missing(keyed), keyed[DEAD_LETTERS], changed[SKIPPED]
        )

    def _missing(self, keyed: Any) -> PCollection | None:
        """Ids stored that no record has any more: point ids, or for chunk points the ids of
        the records they were made from."""
        if not self._find_missing:
            return None
        parents = self._spec.chunks is not None
        if parents:
            record_ids = keyed[PARENTS] | "RecordIds" >> beam.Map(lambda key: (key, None))
        else:
            record_ids = keyed.keyed | "RecordIds" >> beam.MapTuple(lambda key, _: (key, None))
        stored_ids = (
            keyed.keyed.pipeline
            | "Once" >> beam.Create([None])
            | "ScrollStoredIds"
            >> beam.ParDo(_ScrollIds(self._target, self._collection, self._policy, parents))
        )
        return (
            {"records": record_ids, "stored": stored_ids}
            | "JoinById" >> beam.CoGroupByKey()
            | "Missing" >> beam.ParDo(_Missing())
        )


class _DeleteDoFn(beam.DoFn):
    def __init__(
        self, target: QdrantTarget, collection: str, policy: RetryPolicy, parents: bool
    ) -> None:
        self._target = target
        self._collection = collection
        self._policy = policy
        self._parents = parents
        self._deleted = Metrics.counter(REINDEX_NAMESPACE, "deleted")

    def setup(self) -> None:
        self._client = self._target.connect()
        self._calls = QdrantCalls(self._target, self._client, Retrying(self._policy))

    def process(self, ids: list[str]) -> Iterator[int]:
        selector: Any = models.PointIdsList(points=_point_ids(ids))
        if self._parents:  # every chunk point of these records
            match = models.MatchAny(any=list(ids))
            condition = models.FieldCondition(key=PARENT_FIELD, match=match)
            selector = models.FilterSelector(filter=models.Filter(must=[condition]))
        self._calls(lambda c: c.delete(self._collection, selector, wait=True))
        self._deleted.inc(len(ids))
        yield len(ids)

    def teardown(self) -> None:
        if getattr(self, "_client", None) is not None:
            self._target.release(self._client)
            self._client = None


class DeletePoints(AnnotatedTransform):
    """Ids (as ``id_key`` text) -> deleted from the collection, in batches, with retries;
    with ``parents``, the ids are records' and every chunk point of them goes."""

    def __init__(
        self,
        target: QdrantTarget,
        collection: str,
        policy: RetryPolicy | None = None,
        *,
        parents: bool = False,
    ) -> None:
        super().__init__()
        self._target = target
        self._collection = collection
        self._policy = policy or RetryPolicy()
        self._parents = parents

    def expand(self, ids: PCollection) -> PCollection:
        return (
            ids
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=_DELETE_BATCH)
            | "Delete"
            >> beam.ParDo(_DeleteDoFn(self._target, self._collection, self._policy, self._parents))
        )
