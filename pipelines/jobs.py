"""The ingest and reindex jobs: read -> map -> (skip unchanged) -> embed -> write, with every
stage's dead letters flattened into one JSONL file and counted for the summary."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from qdrant_beam.connectors.target import QdrantTarget
from qdrant_beam.connectors.write import WriteBatchResult, WriteToQdrant
from qdrant_beam.io.errors import SpecError
from qdrant_beam.io.window import Concurrency
from qdrant_beam.pipelines.content_hash import CONTENT_HASH_FIELD
from qdrant_beam.pipelines.dead_letter_sink import WriteDeadLetters
from qdrant_beam.pipelines.options import IngestOptions, ReindexOptions, worker_count
from qdrant_beam.pipelines.readers import (
    ReadRecords,
    check_input,
    count_records,
    fields_used,
    infer_format,
)
from qdrant_beam.pipelines.rebuild import finish_rebuild, plan_rebuild
from qdrant_beam.pipelines.reindex import REINDEX_NAMESPACE, DeletePoints, SkipUnchanged
from qdrant_beam.pipelines.summary import (
    CountDeadLetters,
    JobSummary,
    ProgressReporter,
    ProgressTap,
    summarize,
)
from qdrant_beam.transforms.embed_points import EmbedPoints
from qdrant_beam.transforms.prepare import FromHashedRecords
from qdrant_beam.transforms.resolve import ResolveInference
from qdrant_beam.transforms.spec import PointsSpec, load_spec
from qdrant_beam.transforms.workers import shared_providers

__all__ = ["JobResult", "load_job_spec", "run_ingest", "run_reindex", "target_from_options"]

_LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")


@dataclasses.dataclass
class JobResult:
    summary: JobSummary
    collection: str
    exit_code: int = 0


def load_job_spec(path: str, models_dirs: Sequence[str] | None = None) -> PointsSpec:
    """A spec from any Beam path (local, gs://, s3://); ``models_dirs`` extend its search."""
    if "://" not in path:
        spec = load_spec(path)
    else:
        import json

        import yaml

        with FileSystems.open(path) as handle:
            text = handle.read().decode("utf-8")
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise SpecError(f"spec {path} must be a mapping")
        spec = load_spec(data)
    if models_dirs:
        data = spec.model_dump(mode="json", exclude_unset=True)
        data["model_search_paths"] = [*spec.model_search_paths, *models_dirs]
        spec = load_spec(data)
    return spec


def target_from_options(opts: IngestOptions) -> QdrantTarget:
    if bool(opts.qdrant_url) == bool(opts.qdrant_path):
        raise SpecError("give exactly one of --qdrant-url (a server) or --qdrant-path (embedded)")
    if opts.qdrant_url:
        return QdrantTarget(
            url=opts.qdrant_url, prefer_grpc=opts.prefer_grpc, api_key_env=opts.qdrant_api_key_env
        )
    return QdrantTarget(path=opts.qdrant_path, engine=opts.qdrant_engine)


def _check_required(opts: IngestOptions) -> None:
    missing = [
        flag for flag, value in (("--spec", opts.spec), ("--input", opts.input)) if not value
    ]
    if missing:
        raise SpecError(f"missing required option(s): {', '.join(missing)}")


def _hold(
    target: QdrantTarget, options: PipelineOptions
) -> contextlib.AbstractContextManager[None]:
    """On a local runner every stage shares one open embedded folder for the whole job."""
    return target.held() if _is_local(options) else contextlib.nullcontext()


def _is_local(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return runner is None or str(runner).split(".")[-1] in _LOCAL_RUNNERS


def _written_points(batch: WriteBatchResult) -> int:
    return len(batch.ids)


class _CountDistinct(beam.DoFn):
    def process(self, n: int) -> Any:
        Metrics.counter(REINDEX_NAMESPACE, "distinct_written").inc(n)
        return iter(())


def _build(
    pipeline: beam.Pipeline,
    opts: IngestOptions,
    spec: PointsSpec,
    target: QdrantTarget,
    collection: str,
    job: str,
    *,
    skip_unchanged: bool,
    delete_missing: bool,
    count_written: bool,
) -> None:
    fmt = opts.format or infer_format(opts.input)
    read = pipeline | "Read" >> ReadRecords(opts.input, fmt, columns=fields_used(spec))
    records = read.records | "ProgressRead" >> beam.ParDo(ProgressTap(job, "read"))
    workers = worker_count(pipeline.options)
    resolve_kwargs: dict[str, Any] = {
        "providers": shared_providers(spec.providers, workers),
        "batch_size": opts.batch_size,
        "embed_batch_size": opts.embed_batch_size,
        "cache_size": opts.cache_size,
        "dedup": opts.dedup,
        "inference": opts.inference,
        "check_models": _is_local(pipeline.options),
    }
    if skip_unchanged:  # unchanged records are dropped before they are even mapped
        skipped = records | "SkipUnchanged" >> SkipUnchanged(
            spec, target, collection, find_missing=delete_missing
        )
        if skipped.missing is not None:
            _ = skipped.missing | "DeleteMissing" >> DeletePoints(
                target, collection, parents=spec.chunks is not None
            )
        resolve = ResolveInference.from_spec(
            spec, prepare=FromHashedRecords(spec, CONTENT_HASH_FIELD), **resolve_kwargs
        )
        resolved, inference_dead = skipped.changed | "Embed" >> resolve
        _ = skipped.skipped | "ProgressSkipped" >> beam.ParDo(ProgressTap(job, "skipped", int))
        dead_parts = [read.dead_letters, skipped.dead_letters, inference_dead]
    else:
        resolved, embed_dead = records | "Embed" >> EmbedPoints(spec, **resolve_kwargs)
        dead_parts = [read.dead_letters, embed_dead]
    written, write_dead = resolved | "Write" >> WriteToQdrant(
        target,
        spec=spec,
        collection=collection,
        upsert_batch_size=opts.upsert_batch_size,
        inference=opts.inference,
        concurrency=Concurrency(total=opts.max_total_upserts).for_workers(workers),
    )
    _ = written | "ProgressWritten" >> beam.ParDo(ProgressTap(job, "written", _written_points))
    if count_written:
        _ = (
            written
            | "WrittenIds" >> beam.FlatMap(lambda batch: [str(i) for i in batch.ids])
            | "DistinctIds" >> beam.Distinct()
            | "CountIds" >> beam.combiners.Count.Globally()
            | "ReportCount" >> beam.ParDo(_CountDistinct())
        )
    dead = (*dead_parts, write_dead) | "AllDead" >> beam.Flatten()
    counted = dead | "CountDead" >> beam.ParDo(CountDeadLetters())
    _ = counted | "ProgressFailed" >> beam.ParDo(ProgressTap(job, "failed"))
    if opts.dead_letter:
        _ = counted | "WriteDead" >> WriteDeadLetters(opts.dead_letter)


def _run(
    options: PipelineOptions,
    build: Callable[[beam.Pipeline, str], None],
    total: int | None,
    emit: Callable[[str], None],
    interval_s: float,
) -> tuple[Any, float]:
    job = uuid.uuid4().hex
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, job)
    local = _is_local(options)
    with ProgressReporter(job, interval_s=interval_s if local else 0, total=total, emit=emit):
        result = pipeline.run()
        if _staging_only(options):
            return None, time.perf_counter() - started
        result.wait_until_finish()
    return result, time.perf_counter() - started


def _staging_only(options: PipelineOptions) -> bool:
    """A Flex Template launch writes the job for Dataflow to start: nothing to wait for."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    return bool(options.view_as(GoogleCloudOptions).template_location)


def _summary(result: Any, elapsed_s: float) -> JobSummary:
    return summarize(result, elapsed_s) if result is not None else JobSummary(elapsed_s=elapsed_s)


def run_ingest(options: PipelineOptions, emit: Callable[[str], None] = print) -> JobResult:
    """Run ``qdrant-beam ingest``; returns the summary."""
    opts = options.view_as(IngestOptions)
    _check_required(opts)
    spec = load_job_spec(opts.spec, opts.models_dir)
    target = target_from_options(opts)
    check_input(opts.input)
    collection = opts.collection or spec.collection
    total = count_records(opts.input, opts.format) if _is_local(options) else None

    def build(pipeline: beam.Pipeline, job: str) -> None:
        _build(
            pipeline,
            opts,
            spec,
            target,
            collection,
            job,
            skip_unchanged=False,
            delete_missing=False,
            count_written=False,
        )

    with _hold(target, options):
        result, elapsed = _run(options, build, total, emit, opts.progress_interval)
    return JobResult(_summary(result, elapsed), collection)


def run_reindex(options: PipelineOptions, emit: Callable[[str], None] = print) -> JobResult:
    """Run ``qdrant-beam reindex`` in incremental or rebuild mode."""
    opts = options.view_as(IngestOptions)
    ropts = options.view_as(ReindexOptions)
    _check_required(opts)
    spec = load_job_spec(opts.spec, opts.models_dir)
    target = target_from_options(opts)
    check_input(opts.input)
    name = opts.collection or spec.collection
    total = count_records(opts.input, opts.format) if _is_local(options) else None
    with _hold(target, options):
        return _reindex(options, opts, ropts, spec, target, name, total, emit)


def _reindex(
    options: PipelineOptions,
    opts: IngestOptions,
    ropts: ReindexOptions,
    spec: PointsSpec,
    target: QdrantTarget,
    name: str,
    total: int | None,
    emit: Callable[[str], None],
) -> JobResult:
    plan = None
    collection = name
    if ropts.mode == "rebuild":
        with target.named_in_errors():
            client = target.connect()
            try:
                plan = plan_rebuild(client, name)
            finally:
                target.release(client)
        collection = plan.target
        emit(f"rebuild: writing {plan.target}{' (resuming)' if plan.resumed else ''}")

    def build(pipeline: beam.Pipeline, job: str) -> None:
        _build(
            pipeline,
            opts,
            spec,
            target,
            collection,
            job,
            skip_unchanged=True,
            # a rebuild's version must hold exactly the current records, also when resumed
            delete_missing=ropts.delete_missing or plan is not None,
            count_written=plan is not None,
        )

    result, elapsed = _run(options, build, total, emit, opts.progress_interval)
    summary = _summary(result, elapsed)
    if plan is None:
        return JobResult(summary, collection)
    if result is None:
        emit(f"rebuild: staged only; run the rebuild to completion to switch {name!r}")
        return JobResult(summary, collection)
    lost = sum(n for key, n in summary.dead_letters.items() if key.startswith("write/"))
    if lost:
        emit(
            f"rebuild: {lost} points failed to write; the alias {name!r} stays on {plan.live}. "
            f"Run the rebuild again to finish {plan.target}"
        )
        return JobResult(summary, collection, exit_code=1)
    expected = summary.reindex.get("skipped", 0) + summary.distinct_written
    client = target.connect()
    try:
        finish_rebuild(
            client,
            plan,
            expected_points=expected,
            keep_versions=ropts.keep_versions,
            grace_s=ropts.grace_seconds,
            log=emit,
        )
    finally:
        target.release(client)
    return JobResult(summary, name)
