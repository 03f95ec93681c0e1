"""``ResolveInference``: points whose vectors are inference objects in, plain vectors out.

Usage::

    points, dead = point_structs | ResolveInference(models={"my/model": "/models/my"})

Works on any ``qdrant_client.models.PointStruct`` whose vectors hold ``models.Document``,
``models.Image`` or ``models.InferenceObject``, so a job written for Qdrant's server-side
inference moves to Beam unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import apache_beam as beam
from apache_beam.pvalue import PCollection
from apache_beam.utils.shared import Shared
from apache_beam.utils.windowed_value import WindowedValue
from qdrant_client import models

from qdrant_beam.connectors.inflight import InFlight
from qdrant_beam.connectors.window import AimdWindow
from qdrant_beam.transforms.backends.providers import PROVIDERS, ProviderConfig
from qdrant_beam.transforms.backends.registry import Family, InputKind
from qdrant_beam.transforms.catalog import LocalModel, ModelCatalog
from qdrant_beam.transforms.dead_letters import DEAD_LETTERS, FailedRecord, Stage
from qdrant_beam.transforms.engine import EngineMetrics, InferenceEngine, RecordingMetrics
from qdrant_beam.transforms.errors import SpecError
from qdrant_beam.transforms.global_dedup import GlobalDedupResolve
from qdrant_beam.transforms.images import ImageLimits
from qdrant_beam.transforms.options import split_options
from qdrant_beam.transforms.outputs import AnnotatedTransform, InferenceOutputs
from qdrant_beam.transforms.records_to_points import MapDoFn, RecordsToPoints
from qdrant_beam.transforms.requests import INFERENCE_TYPES
from qdrant_beam.transforms.spec import PointsSpec
from qdrant_beam.transforms.worker import EngineDoFn, StoreConfig

__all__ = ["InferenceOutputs", "ResolveInference"]

#: Points per Beam batch by default: enough for dedup and padded model batches to pay off.
DEFAULT_BATCH_SIZE = 256
#: The default when a spec routes a vector to a remote provider: fewer, fuller requests (the
#: providers take up to 96-2048 inputs each and rate-limit requests per minute). Measured on
#: the remote benchmark, 1,024 against 256: 11% less wall time, median of six.
REMOTE_BATCH_SIZE = 1024


def point_weight(point: models.PointStruct) -> int:
    """Approximate bytes of a point's inference inputs, for byte-bounded batches."""
    vector = point.vector
    objects = vector.values() if isinstance(vector, dict) else [vector]
    size = 0
    for obj in objects:
        if isinstance(obj, models.Document):
            size += len(obj.text)
        elif isinstance(obj, models.Image):
            size += len(obj.image) if isinstance(obj.image, (str, bytes)) else 1024
        elif isinstance(obj, models.InferenceObject):
            size += len(obj.object) if isinstance(obj.object, (str, bytes)) else 1024
    return size


def record_weight(record: Any) -> int:
    """Approximate bytes of a record's text and binary fields, for byte-bounded batches of
    records (the point's inputs are made from them)."""
    if not isinstance(record, Mapping):
        return 1
    size = 0
    for value in record.values():
        size += len(value) if isinstance(value, (str, bytes, bytearray)) else 16
    return size


class ResolveDoFn(EngineDoFn):
    """Thin: the engine resolves a batch; bad points go to the dead-letter output.

    With ``batches_in_flight > 1`` batches resolve on threads while ``process`` takes the next
    one (remote providers spend their time waiting on the network); ``process`` blocks when
    that many are running, and ``finish_bundle`` waits for all of them.
    """

    def __init__(self, config: StoreConfig, shared: Shared, batches_in_flight: int = 1) -> None:
        super().__init__(config, shared)
        self._batches_in_flight = batches_in_flight

    def setup(self) -> None:
        super().setup()
        self._inflight: InFlight[list[models.PointStruct], Any] | None = None
        if self._batches_in_flight > 1:
            n = self._batches_in_flight
            self._inflight = InFlight(self._resolve_off_thread, AimdWindow(n, n, n))

    def _resolve_off_thread(self, batch: list[Any]) -> Any:
        recorder = RecordingMetrics()
        engine = InferenceEngine(
            self._store, embed_batch_size=self._config.embed_batch_size, metrics=recorder
        )
        points, failed = self._resolve(engine, batch)
        return points, failed, recorder

    def _resolve(
        self, engine: InferenceEngine, batch: list[Any]
    ) -> tuple[list[models.PointStruct], list[FailedRecord]]:
        return engine.resolve(batch)

    def process(
        self,
        batch: list[Any],  # points, or mapped records (MapResolveDoFn)
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        if self._inflight is None:
            points, failed = self._resolve(self._engine, batch)
            yield from points
            for record in failed:
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, record)
            return
        self._inflight.submit(batch, tag=(window, timestamp))
        yield from self._emit(self._inflight.completed())

    def finish_bundle(self) -> Iterator[Any]:
        if self._inflight is not None:
            yield from self._emit(self._inflight.flush())

    def _emit(self, done: list[tuple[Any, Any]]) -> Iterator[Any]:
        for (win, ts), outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # a deployment error (no model, refused key): fail the bundle
            points, failed, recorder = outcome
            recorder.replay(EngineMetrics())
            for point in points:
                yield WindowedValue(point, ts, (win,))
            for record in failed:
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, WindowedValue(record, ts, (win,)))

    def teardown(self) -> None:
        inflight = getattr(self, "_inflight", None)
        if inflight is not None:
            inflight.close()


class MapResolveDoFn(ResolveDoFn):
    """Batches of records -> points with vectors: the mapping runs inside the resolve step.

    Batches of dict records cross the batching hop instead of pydantic points, which Beam
    would pickle to sample their size; measured on the remote benchmark, 16% less CPU than
    mapping in a step of its own. Records are mapped to ``MappedRecord``s and each point is
    built once, with its vectors (no ``Document`` or intermediate point per record). Unmappable
    records go to dead letters with stage ``map``, counted in the ``qdrant_beam.map`` metrics
    as ``RecordsToPoints`` counts them.
    """

    def __init__(
        self, spec: PointsSpec, config: StoreConfig, shared: Shared, batches_in_flight: int = 1
    ) -> None:
        super().__init__(config, shared, batches_in_flight)
        self._map = MapDoFn(spec)

    def setup(self) -> None:
        super().setup()
        self._map.setup()

    def _resolve(
        self, engine: InferenceEngine, batch: list[Any]
    ) -> tuple[list[models.PointStruct], list[FailedRecord]]:
        return engine.resolve_mapped(batch)

    def process(
        self,
        batch: list[Any],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        mapped, failed = self._map.map_batch(batch)
        for record in failed:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, record)
        if mapped:
            yield from super().process(mapped, window, timestamp)


class ResolveInference(AnnotatedTransform):
    """Replace inference objects with vectors; returns ``InferenceOutputs``.

    Args:
        models: model name -> folder (or ``LocalModel`` facts) for local models.
        model_search_paths: folders searched for models not in ``models``.
        batch_size: points per Beam batch (dedup and length ordering act within one batch).
            Default: 1,024 when a spec routes a vector to a remote provider, else 256.
        batch_max_bytes: bound on the input bytes of one batch.
        embed_batch_size: inputs per padded model batch inside fastembed.
        cache_size: entries of the per-worker LRU cache across batches; 0 turns it off.
        dedup: ``"batch"`` dedupes within each batch; ``"global"`` shuffles by dedup key first,
            so each unique input is embedded once across all workers.
        image_limits: pixel, byte and format bounds for image inputs.
        preload: (model, input kind, options) the transform uses. Their folders are looked up
            at launch (``check_models``); otherwise the workers load them in ``setup`` so a
            missing model fails before the first element.
        check_models: look the preloaded models' folders up now, on the launching machine,
            and let workers load each model on first use (a job with nothing to embed, such
            as an unchanged reindex, then loads none); turn off when the folders exist only
            on the workers, which then load every model in ``setup``.
        providers: remote provider settings by provider name (base URL, key variable,
            concurrency); keys are read from the workers' environment in ``setup``.
        batches_in_flight: batches resolved concurrently per DoFn; more than one overlaps
            remote requests with the rest of the pipeline. Default: 4 when a spec routes a
            vector to a remote provider, else 1.
        inference: ``"local"`` computes vectors here; ``"server"`` leaves the inference objects
            in the points for Qdrant to embed (Qdrant Cloud inference) and only checks them.
    """

    def __init__(
        self,
        *,
        models: Mapping[str, LocalModel | Mapping[str, Any] | str] | None = None,
        model_search_paths: Sequence[str] = (),
        catalog: ModelCatalog | None = None,
        batch_size: int | None = None,
        batch_max_bytes: int = 8 * 1024 * 1024,
        embed_batch_size: int = 32,
        cache_size: int = 0,
        dedup: Literal["batch", "global"] = "batch",
        image_limits: ImageLimits | None = None,
        preload: Sequence[tuple[str, InputKind, Mapping[str, Any]]] = (),
        check_models: bool = True,
        providers: Mapping[str, ProviderConfig | Mapping[str, Any]] | None = None,
        batches_in_flight: int | None = None,
        inference: Literal["local", "server"] = "local",
    ) -> None:
        super().__init__()
        if inference not in ("local", "server"):
            raise SpecError(f"inference must be 'local' or 'server', got {inference!r}")
        if batches_in_flight is not None and batches_in_flight < 1:
            raise SpecError(f"batches_in_flight must be >= 1, got {batches_in_flight}")
        provider_configs: dict[str, ProviderConfig] = {}
        for name, entry in (providers or {}).items():
            if name not in PROVIDERS:
                raise SpecError(f"unknown provider {name!r}; use one of {', '.join(PROVIDERS)}")
            provider_configs[name] = (
                entry if isinstance(entry, ProviderConfig) else ProviderConfig.model_validate(entry)
            )
        batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1 or embed_batch_size < 1 or batch_max_bytes < 1 or cache_size < 0:
            raise SpecError(
                "batch_size, embed_batch_size and batch_max_bytes must be positive and "
                f"cache_size non-negative; got {batch_size}, {embed_batch_size}, "
                f"{batch_max_bytes}, {cache_size}"
            )
        if dedup not in ("batch", "global"):
            raise SpecError(f"dedup must be 'batch' or 'global', got {dedup!r}")
        catalog = catalog or ModelCatalog.of(models, list(model_search_paths))
        frozen_preload = tuple(
            (model, InputKind(kind), tuple(sorted(dict(opts).items())))
            for model, kind, opts in preload
        )
        setup_loads = frozen_preload if inference == "local" else ()
        if check_models and inference == "local":
            for model, kind, opts in frozen_preload:
                info = catalog.describe(model, kind)
                if info.family is not Family.REMOTE:
                    catalog.folder(info, split_options(info, dict(opts)).load_dict)
            # local folders exist: load on first use; remote clients are cheap, build them
            setup_loads = tuple(
                entry
                for entry in frozen_preload
                if catalog.describe(entry[0], entry[1]).family is Family.REMOTE
            )
        self._config = StoreConfig(
            catalog,
            cache_size,
            image_limits or ImageLimits(),
            embed_batch_size,
            setup_loads,
            tuple(sorted(provider_configs.items())),
        )
        self._batches_in_flight = batches_in_flight or 1
        self._inference = inference
        self._batch_size = batch_size
        self._batch_max_bytes = batch_max_bytes
        self._dedup = dedup
        self._shared = Shared()

    @classmethod
    def from_spec(cls, spec: PointsSpec, **kwargs: Any) -> ResolveInference:
        """Resolve with the spec's models and providers, preloading every model it uses."""
        preload = []
        seen = set()
        remote = False
        for name, vector in spec.vectors.items():
            load = tuple(sorted(spec.split_options(name).load))
            info = spec.model_info(name)
            remote = remote or info.family is Family.REMOTE
            key = (info.name, vector.input_kind, load)
            if key not in seen:
                seen.add(key)
                preload.append((key[0], key[1], {k: v for k, v in load}))
        kwargs.setdefault("providers", spec.providers)
        kwargs.setdefault("batches_in_flight", 4 if remote else None)
        if kwargs.get("batch_size") is None:
            kwargs["batch_size"] = REMOTE_BATCH_SIZE if remote else DEFAULT_BATCH_SIZE
        return cls(catalog=spec.catalog(), preload=preload, **kwargs)

    def _batch(self, pcoll: PCollection, weight: Any = point_weight) -> PCollection:
        per_byte = self._batch_size / self._batch_max_bytes
        return pcoll | "Batch" >> beam.BatchElements(
            min_batch_size=self._batch_size,
            max_batch_size=self._batch_size,
            element_size_fn=lambda e: max(1, math.ceil(weight(e) * per_byte)),
        )

    def expand_records(self, records: PCollection, spec: PointsSpec) -> InferenceOutputs:
        """Records -> points with vectors, per ``spec``: what ``EmbedPoints`` applies.

        With batch dedup and local inference the mapping runs inside the resolve step
        (``MapResolveDoFn``); otherwise ``RecordsToPoints`` runs first and this transform
        after it.
        """
        if self._dedup == "batch" and self._inference == "local":
            outputs = self._batch(records, record_weight) | "MapAndEmbed" >> beam.ParDo(
                MapResolveDoFn(spec, self._config, self._shared, self._batches_in_flight)
            ).with_outputs(DEAD_LETTERS, main="points")
            return InferenceOutputs(outputs.points, outputs[DEAD_LETTERS])
        mapped = records | "RecordsToPoints" >> RecordsToPoints(spec)
        resolved = mapped.points | "ResolveInference" >> self
        dead = (mapped.dead_letters, resolved.dead_letters) | "DeadLetters" >> beam.Flatten()
        return InferenceOutputs(resolved.points, dead)

    def expand(self, pcoll: PCollection) -> InferenceOutputs:
        if self._inference == "server":
            checked = pcoll | "CheckForServer" >> beam.ParDo(
                ServerInferenceCheckDoFn()
            ).with_outputs(DEAD_LETTERS, main="points")
            return InferenceOutputs(checked.points, checked[DEAD_LETTERS])
        if self._dedup == "global":
            return InferenceOutputs(
                *pcoll
                | "GlobalDedup" >> GlobalDedupResolve(self._config, self._shared, self._batch_size)
            )
        outputs = self._batch(pcoll) | "Embed" >> beam.ParDo(
            ResolveDoFn(self._config, self._shared, self._batches_in_flight)
        ).with_outputs(DEAD_LETTERS, main="points")
        return InferenceOutputs(outputs.points, outputs[DEAD_LETTERS])


def has_inference(point: models.PointStruct) -> bool:
    vector = point.vector
    if isinstance(vector, dict):
        return any(isinstance(v, INFERENCE_TYPES) for v in vector.values())
    return isinstance(vector, INFERENCE_TYPES)


class ServerInferenceCheckDoFn(beam.DoFn):
    """Server-side inference: points keep their inference objects; this only sends points
    whose objects Qdrant could never embed (no model, empty text, no image) to dead letters."""

    def process(self, point: models.PointStruct) -> Iterator[Any]:
        vector = point.vector
        objects = vector.items() if isinstance(vector, dict) else [(None, vector)]
        for name, obj in objects:
            problem = _server_problem(obj)
            if problem is not None:
                where = f"vector {name!r}" if name is not None else "vector"
                yield beam.pvalue.TaggedOutput(
                    DEAD_LETTERS,
                    FailedRecord(point, Stage.INFERENCE, "InvalidRecord", f"{where}: {problem}"),
                )
                return
        yield point


def _server_problem(obj: Any) -> str | None:
    if not isinstance(obj, INFERENCE_TYPES):
        return None
    if not obj.model:
        return "inference object has no model"
    if isinstance(obj, models.Document):
        if not isinstance(obj.text, str) or not obj.text.strip():
            return "document text is empty or whitespace"
    elif isinstance(obj, models.Image):
        if obj.image is None or (isinstance(obj.image, str) and not obj.image.strip()):
            return "image input is empty"
    elif obj.object is None:
        return "inference object has no input"
    return None
