"""What a job tells its user: a progress line while it runs locally, a summary when it ends.

The summary comes from Beam metrics, so it works on every runner that reports them. Progress
needs numbers while the pipeline is still running; local runners (FnApiRunner, DirectRunner
in memory) run the DoFns in this process, so a tap DoFn counts into a process-wide registry that
a reporter thread prints from. On remote runners the runner's own UI shows progress.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from qdrant_beam.transforms.dead_letters import FailedRecord

__all__ = [
    "CountDeadLetters",
    "JobSummary",
    "ProgressReporter",
    "ProgressTap",
    "summarize",
]

SUMMARY_NAMESPACE = "qdrant_beam.job"
_LOCK = threading.Lock()
_PROGRESS: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)


class ProgressTap(beam.DoFn):
    """Counts elements passing by into the in-process progress registry (and passes them on)."""

    def __init__(self, job: str, name: str, weight: Callable[[Any], int] | None = None) -> None:
        self._job = job
        self._name = name
        self._weight = weight

    def process(self, element: Any) -> Iterator[Any]:
        n = self._weight(element) if self._weight else 1
        with _LOCK:
            _PROGRESS[self._job][self._name] += n
        yield element


def _metric_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "unknown"


class CountDeadLetters(beam.DoFn):
    """One counter per (stage, reason), so the summary can break dead letters down."""

    def process(self, failed: FailedRecord) -> Iterator[FailedRecord]:
        name = f"dead_{_metric_key(failed.stage)}__{_metric_key(failed.error_type)}"
        Metrics.counter(SUMMARY_NAMESPACE, name).inc()
        yield failed


class ProgressReporter:
    """Prints a progress line every ``interval_s`` from the in-process counters."""

    def __init__(
        self,
        job: str,
        *,
        interval_s: float,
        total: int | None,
        emit: Callable[[str], None] = print,
    ) -> None:
        self._job = job
        self._interval = interval_s
        self._total = total
        self._emit = emit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> ProgressReporter:
        self._started = time.monotonic()
        if self._interval > 0:
            self._thread = threading.Thread(target=self._run, daemon=True, name="progress")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with _LOCK:
            _PROGRESS.pop(self._job, None)

    def line(self) -> str:
        """Records done (written, unchanged or failed), not read: reading races ahead of
        embedding, so a rate or ETA of records read says nothing about the end."""
        with _LOCK:
            counts = dict(_PROGRESS.get(self._job, {}))
        elapsed = max(time.monotonic() - self._started, 1e-9)
        written, skipped, failed = (counts.get(k, 0) for k in ("written", "skipped", "failed"))
        done = written + skipped + failed
        rate = done / elapsed
        head = f"progress: {done:,}"
        if self._total:
            share = 100.0 * min(done, self._total) / self._total
            head += f" of {self._total:,} records done ({share:.1f}%)"
        else:
            head += " records done"
        parts = [f"{written:,} points written"]
        if skipped:
            parts.append(f"{skipped:,} unchanged")
        parts.append(f"{failed:,} failed")
        line = f"{head}: {', '.join(parts)}; {counts.get('read', 0):,} read; {rate:,.0f} records/s"
        if self._total and done < self._total:
            eta = f"{(self._total - done) / rate:,.0f} s" if rate > 0 else "unknown"
            line += f"; ETA {eta}"
        return f"{line}; {elapsed:,.0f} s elapsed"

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._emit(self.line())


@dataclasses.dataclass
class JobSummary:
    """The numbers printed at the end of a job."""

    records_read: int = 0
    points_written: int = 0
    dead_letters: dict[str, int] = dataclasses.field(default_factory=dict)
    inference_objects: int = 0
    model_inputs: int = 0
    model_calls: int = 0
    #: local models loaded, summed over worker processes (each loads a model once)
    model_loads: int = 0
    cache_hits: int = 0
    remote_requests: int = 0
    remote_tokens: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    reindex: dict[str, int] = dataclasses.field(default_factory=dict)
    #: distinct point ids written (rebuild checks the new version's count against it)
    distinct_written: int = 0

    @property
    def dead_letter_total(self) -> int:
        return sum(self.dead_letters.values())

    def lines(self) -> list[str]:
        rate = self.records_read / self.elapsed_s if self.elapsed_s > 0 else 0.0
        out = [
            f"records read:      {self.records_read:,}",
            f"points written:    {self.points_written:,}",
        ]
        if self.reindex:
            out.append(
                "reindex:           "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(self.reindex.items()))
            )
        ratio = (
            f" (dedup {self.inference_objects / self.model_inputs:.2f}x)"
            if self.model_inputs
            else ""
        )
        out.append(
            f"inference:         {self.inference_objects:,} objects -> {self.model_inputs:,} "
            f"model inputs in {self.model_calls:,} calls{ratio}"
        )
        if self.remote_requests:
            out.append(
                f"remote providers:  {self.remote_requests:,} requests, "
                f"{self.remote_tokens:,} tokens billed"
            )
        out.append(f"retries:           {self.retries:,}")
        if self.dead_letters:
            out.append(f"dead letters:      {self.dead_letter_total:,}")
            for key, n in sorted(self.dead_letters.items()):
                out.append(f"  {key}: {n:,}")
        else:
            out.append("dead letters:      0")
        out.append(f"elapsed:           {self.elapsed_s:,.1f} s ({rate:,.0f} records/s)")
        return out


def _counters(result: Any) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = collections.defaultdict(int)
    for counter in result.metrics().query(MetricsFilter())["counters"]:
        try:
            value = counter.committed
        except Exception:  # some runners report attempted values only
            value = None
        if value is None:
            value = counter.attempted
        totals[(counter.key.metric.namespace, counter.key.metric.name)] += int(value or 0)
    return totals


def summarize(result: Any, elapsed_s: float) -> JobSummary:
    """The summary of a finished pipeline, from its metrics."""
    c = _counters(result)
    inf = "qdrant_beam.inference"
    summary = JobSummary(
        records_read=c[("qdrant_beam.read", "records_read")],
        points_written=c[("qdrant_beam.write", "points_written")],
        inference_objects=c[(inf, "inference_objects")],
        model_inputs=c[(inf, "model_inputs")],
        model_calls=c[(inf, "model_calls")],
        model_loads=c[(inf, "model_loads")],
        cache_hits=c[(inf, "cache_hits")],
        remote_requests=c[(inf, "remote_requests")],
        remote_tokens=c[(inf, "remote_tokens")],
        elapsed_s=elapsed_s,
    )
    for (namespace, name), n in c.items():
        if namespace == SUMMARY_NAMESPACE and name.startswith("dead_") and n:
            stage, _, reason = name.removeprefix("dead_").partition("__")
            summary.dead_letters[f"{stage}/{reason}"] = n
        elif (namespace == "qdrant_beam.write" and name.startswith("retries_")) or (
            namespace == inf and name == "remote_retries"
        ):
            summary.retries += n
        elif namespace == "qdrant_beam.reindex" and name == "distinct_written":
            summary.distinct_written = n
        elif namespace == "qdrant_beam.reindex" and n:
            summary.reindex[name] = n
    return summary
