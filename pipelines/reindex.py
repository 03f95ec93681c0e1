"""Reindexing: skip records whose content did not change, or rebuild behind an alias.

Incremental: every point carries ``CONTENT_HASH_FIELD`` in its payload, a hash over the
record fields it is made from (id, templates, payload) and the spec's id, payload and vector
definitions. Before mapping, records are keyed by point id and their stored hashes looked up
in batches (``retrieve`` by id, payload selector: that field only, no vectors): unchanged
records are dropped before they are mapped or any model sees them, changed and new ones are
embedded and upserted. With ``delete_missing`` the stored ids are scrolled and joined with the
record ids, and the ids that no longer have a record are deleted. Point ids are deterministic
and upserts idempotent, so a run that crashed is finished by running it again.

Rebuild: write into ``<alias>_v<N>``, check its count, then move the alias in one atomic
``update_collection_aliases`` call; readers of the alias see the old or the new version,
never a partial one. A rebuild that crashed left an unaliased newest version behind: the
next run reuses it (ids are deterministic, so nothing duplicates) instead of starting over.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, TypeVar

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PCollection, TaggedOutput
from qdrant_client import models

from qdrant_beam.connectors.clock import Clock, SystemClock
from qdrant_beam.connectors.inflight import InFlight, windowed
from qdrant_beam.connectors.qdrant_errors import translate_errors
from qdrant_beam.connectors.retry import RetryPolicy
from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.window import AimdWindow
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.errors import InvalidRecord, QdrantBeamError, SpecError
from qdrant_beam.transforms.mapping import RecordMapper
from qdrant_beam.transforms.options import canonical_json
from qdrant_beam.transforms.outputs import AnnotatedTransform
from qdrant_beam.transforms.records_to_points import MapDoFn
from qdrant_beam.transforms.spec import PointsSpec

__all__ = [
    "CONTENT_HASH_FIELD",
    "REINDEX_NAMESPACE",
    "AliasPlan",
    "ContentHasher",
    "DeletePoints",
    "SkipUnchanged",
    "SkippedOutputs",
    "content_hash",
    "finish_rebuild",
    "plan_rebuild",
]

CONTENT_HASH_FIELD = "_qdrant_beam_hash"
REINDEX_NAMESPACE = "qdrant_beam.reindex"
_SCROLL_PAGE = 1_000
_LOOKUP_BATCH = 500
_LOOKUPS_IN_FLIGHT = 2
_DELETE_BATCH = 512
#: Tag of the lookup's counts of unchanged records.
SKIPPED = "skipped"

T = TypeVar("T")


def spec_fingerprint(spec: PointsSpec) -> str:
    """The part of the spec that shapes points: changing a model, an option, the id rule or the
    payload fields re-embeds everything."""
    shaping = spec.model_dump(mode="json", include={"id", "payload", "vectors"})
    return canonical_json(shaping)


def _hashable(value: Any) -> Any:
    """JSON for values json cannot take: bytes by their digest, numpy as lists, rest as text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$sha256": hashlib.sha256(value).hexdigest()}
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    return str(value)


def content_hash(shaping_part: dict[str, Any], fingerprint: str) -> str:
    """Hash of everything a point is made from: the record fields it reads and the spec."""
    return ContentHasher(fingerprint)(shaping_part)


class ContentHasher:
    """``content_hash`` for one fingerprint, which is hashed once instead of per record.

    The digest is sha256 over ``json.dumps([fingerprint, part], sort_keys=True)``: the
    fingerprint's share of that text is the same for every record, so its hash state is
    copied rather than recomputed (half the time per record).
    """

    def __init__(self, fingerprint: str) -> None:
        self._encode = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), default=_hashable
        ).encode
        self._prefix = hashlib.sha256(f"[{self._encode(fingerprint)},".encode())

    def __call__(self, shaping_part: dict[str, Any]) -> str:
        digest = self._prefix.copy()
        digest.update(self._encode(shaping_part).encode("utf-8"))
        digest.update(b"]")
        return digest.hexdigest()[:32]


def id_key(point_id: Any) -> str:
    """Ids as Qdrant returns them: integers as text, UUIDs in canonical form."""
    if isinstance(point_id, int):
        return str(point_id)
    try:
        return str(uuid.UUID(str(point_id)))
    except ValueError:
        return str(point_id)


def with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> T:
    """``action()``, retried on transient Qdrant errors per ``policy``."""
    clock = clock or SystemClock()
    rng = rng or random.Random()
    started = clock.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            with translate_errors():
                return action()
        except QdrantBeamError as exc:
            wait = policy.next_wait_s(attempt, exc, clock.monotonic() - started, rng)
            if wait is None:
                raise
            clock.sleep(wait)


class _KeyRecord(beam.DoFn):
    """record -> (id, (hash, record)); a record without a usable id goes to dead letters."""

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
        except (QdrantBeamError, TypeError, ValueError) as exc:
            if not isinstance(exc, QdrantBeamError):  # json refused it (mixed-type keys, say)
                exc = InvalidRecord(f"cannot hash the record: {exc}")
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS, FailedRecord.from_exception(record, Stage.MAP, exc)
            )
            return
        yield key, (digest, record)


class _MapHashed(MapDoFn):
    """(hash, record) -> its point, with the hash in the payload for the next run."""

    def process(self, element: tuple[str, Any]) -> Iterator[Any]:
        digest, record = element
        for out in super().process(record):
            if isinstance(out, models.PointStruct):
                out.payload = {**(out.payload or {}), CONTENT_HASH_FIELD: digest}
            yield out


def _point_ids(keys: Iterable[str]) -> list[Any]:
    """``id_key`` text back to the ids Qdrant takes: unsigned integers or UUID strings."""
    return [int(k) if k.isdigit() else k for k in keys]


def _locked(lock: Any, action: Callable[[], T]) -> T:
    if lock is None:
        return action()
    with lock:
        return action()


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
        self._exists = False
        self._exists_lock = threading.Lock()
        size = _LOOKUPS_IN_FLIGHT
        self._inflight: InFlight[list[Any], _Lookup] = InFlight(
            self._lookup,
            AimdWindow(minimum=size, initial=size, maximum=size),
            name="qdrant-beam-lookup",
        )

    def _collection_exists(self) -> bool:
        """Asked until it exists: this job's own writer may create the collection."""
        client, lock = self._client, self._target.write_lock()
        with self._exists_lock:
            if not self._exists:
                self._exists = with_retries(
                    lambda: _locked(lock, lambda: client.collection_exists(self._collection)),
                    self._policy,
                )
            return self._exists

    def _stored(self, keys: list[str]) -> dict[str, str | None]:
        if not self._collection_exists():
            return {}
        client, lock = self._client, self._target.write_lock()
        selector = models.PayloadSelectorInclude(include=[CONTENT_HASH_FIELD])

        def retrieve() -> Any:
            return client.retrieve(
                self._collection, _point_ids(keys), with_payload=selector, with_vectors=False
            )

        found = with_retries(lambda: _locked(lock, retrieve), self._policy)
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
    """Every point id in the collection (no payload, no vectors); nothing if it is missing."""

    def __init__(self, target: QdrantTarget, collection: str, policy: RetryPolicy) -> None:
        self._target = target
        self._collection = collection
        self._policy = policy

    def process(self, _: Any) -> Iterator[tuple[str, None]]:
        client = self._target.connect()
        try:
            yield from self._scroll(client)
        finally:
            self._target.release(client)

    def _scroll(self, client: Any) -> Iterator[tuple[str, None]]:
        if not with_retries(lambda: client.collection_exists(self._collection), self._policy):
            return

        def page(start: Any) -> Any:
            return client.scroll(
                self._collection,
                limit=_SCROLL_PAGE,
                offset=start,
                with_payload=False,
                with_vectors=False,
            )

        offset: Any = None
        while True:
            records, offset = with_retries(functools.partial(page, offset), self._policy)
            for record in records:
                yield id_key(record.id), None
            if offset is None:
                return


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
    points: PCollection
    """New and changed records as points (inference objects unresolved), hash in the payload."""
    missing: PCollection | None
    """Ids stored in the collection that no record has any more; ``None`` unless
    ``find_missing``."""
    dead_letters: PCollection
    """Records without a usable id, or that do not map to a point."""
    skipped: PCollection
    """How many unchanged records each lookup dropped (for progress)."""


class SkipUnchanged(AnnotatedTransform):
    """Records -> points for only the new and changed ones; returns ``SkippedOutputs``.

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
            DEAD_LETTERS, main="keyed"
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
        mapped = changed.changed | "ToPoints" >> beam.ParDo(_MapHashed(self._spec)).with_outputs(
            DEAD_LETTERS, main="points"
        )
        dead = (keyed[DEAD_LETTERS], mapped[DEAD_LETTERS]) | "Dead" >> beam.Flatten()
        return SkippedOutputs(mapped.points, self._missing(keyed.keyed), dead, changed[SKIPPED])

    def _missing(self, keyed: PCollection) -> PCollection | None:
        if not self._find_missing:
            return None
        pipeline = keyed.pipeline
        record_ids = keyed | "RecordIds" >> beam.MapTuple(lambda key, _: (key, None))
        stored_ids = (
            pipeline
            | "Once" >> beam.Create([None])
            | "ScrollStoredIds"
            >> beam.ParDo(_ScrollIds(self._target, self._collection, self._policy))
        )
        return (
            {"records": record_ids, "stored": stored_ids}
            | "JoinById" >> beam.CoGroupByKey()
            | "Missing" >> beam.ParDo(_Missing())
        )


class _DeleteDoFn(beam.DoFn):
    def __init__(self, target: QdrantTarget, collection: str, policy: RetryPolicy) -> None:
        self._target = target
        self._collection = collection
        self._policy = policy
        self._deleted = Metrics.counter(REINDEX_NAMESPACE, "deleted")

    def setup(self) -> None:
        self._client = self._target.connect()

    def process(self, ids: list[str]) -> Iterator[int]:
        selector = models.PointIdsList(points=_point_ids(ids))
        lock = self._target.write_lock()

        def delete() -> Any:
            return _locked(lock, lambda: self._client.delete(self._collection, selector, wait=True))

        with_retries(delete, self._policy)
        self._deleted.inc(len(ids))
        yield len(ids)

    def teardown(self) -> None:
        if getattr(self, "_client", None) is not None:
            self._target.release(self._client)
            self._client = None


class DeletePoints(AnnotatedTransform):
    """Ids (as ``id_key`` text) -> deleted from the collection, in batches, with retries."""

    def __init__(
        self, target: QdrantTarget, collection: str, policy: RetryPolicy | None = None
    ) -> None:
        super().__init__()
        self._target = target
        self._collection = collection
        self._policy = policy or RetryPolicy()

    def expand(self, ids: PCollection) -> PCollection:
        return (
            ids
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=_DELETE_BATCH)
            | "Delete" >> beam.ParDo(_DeleteDoFn(self._target, self._collection, self._policy))
        )


# -- rebuild ------------------------------------------------------------------------------


class AliasPlan:
    """Which versioned collection a rebuild writes, and what the alias points at now."""

    def __init__(self, alias: str, live: str | None, target: str, resumed: bool) -> None:
        self.alias = alias
        self.live = live
        self.target = target
        self.resumed = resumed

    def __repr__(self) -> str:
        return (
            f"AliasPlan(alias={self.alias!r}, live={self.live!r}, target={self.target!r}, "
            f"resumed={self.resumed})"
        )


def _versions(client: Any, alias: str) -> dict[int, str]:
    pattern = re.compile(rf"^{re.escape(alias)}_v(\d+)$")
    names = [c.name for c in client.get_collections().collections]
    return {int(m.group(1)): n for n in names if (m := pattern.match(n))}


def _alias_target(client: Any, alias: str) -> str | None:
    for entry in client.get_aliases().aliases:
        if entry.alias_name == alias:
            return str(entry.collection_name)
    return None


def plan_rebuild(client: Any, alias: str) -> AliasPlan:
    """The next version to build; an unaliased newest version left by a crash is reused."""
    with translate_errors():
        names = {c.name for c in client.get_collections().collections}
        if alias in names:
            raise SpecError(
                f"{alias!r} is a collection, but a rebuild serves {alias!r} as an alias over "
                f"versioned collections ({alias}_v1, {alias}_v2, ...). Rebuild under another "
                f"name, or move the data: create the alias once with `--collection` naming a "
                f"new alias, then point readers at it"
            )
        versions = _versions(client, alias)
        live = _alias_target(client, alias)
    if versions:
        newest = max(versions)
        if versions[newest] != live:
            return AliasPlan(alias, live, versions[newest], resumed=True)
        return AliasPlan(alias, live, f"{alias}_v{newest + 1}", resumed=False)
    return AliasPlan(alias, live, f"{alias}_v1", resumed=False)


def finish_rebuild(
    client: Any,
    plan: AliasPlan,
    *,
    expected_points: int,
    keep_versions: int,
    grace_s: float,
    clock: Clock | None = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Check the new version's count, switch the alias atomically, drop old versions.

    Returns the collections dropped. Raises ``SpecError`` (and leaves the alias alone) when
    the new version holds fewer points than the run wrote.
    """
    clock = clock or SystemClock()
    with translate_errors():
        count = client.count(plan.target, exact=True).count
    if count < expected_points:
        raise SpecError(
            f"{plan.target} holds {count} points but {expected_points} were written; the alias "
            f"{plan.alias!r} still points at {plan.live!r}. Run the rebuild again to finish it"
        )
    actions: list[Any] = []
    if plan.live is not None:
        actions.append(
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=plan.alias))
        )
    actions.append(
        models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=plan.target, alias_name=plan.alias)
        )
    )
    with translate_errors():
        client.update_collection_aliases(change_aliases_operations=actions)
    log(f"alias {plan.alias!r} -> {plan.target} ({count:,} points; was {plan.live})")
    if grace_s > 0:
        clock.sleep(grace_s)
    with translate_errors():
        versions = _versions(client, plan.alias)
    live_version = next(v for v, name in versions.items() if name == plan.target)
    old = sorted((v for v in versions if v < live_version), reverse=True)
    dropped = []
    for version in old[keep_versions:]:
        with translate_errors():
            client.delete_collection(versions[version])
        dropped.append(versions[version])
    if dropped:
        log(f"dropped old versions: {', '.join(dropped)}")
    return dropped


def versions_json(client: Any, alias: str) -> str:
    """For logs: the versions and the alias target."""
    return json.dumps({"versions": _versions(client, alias), "live": _alias_target(client, alias)})
