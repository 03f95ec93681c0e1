"""How many worker processes share a server, read from the runner's own options.

Every worker keeps its own windows (``Concurrency``) and nothing coordinates them, so a sink
or a provider client told how many workers run (``Concurrency.for_workers``) takes its share
of the server instead of all of it. ``WriteToQdrant`` and ``ResolveInference`` apply the
count below to settings that do not name one; settings that do (``for_workers(n)``, or the
CLI's ``--worker-count``) are kept.
"""

from __future__ import annotations

from collections.abc import Mapping

from apache_beam.options.pipeline_options import (
    DirectOptions,
    FlinkRunnerOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)

from qdrant_beam.io.window import Concurrency
from qdrant_beam.transforms.backends.providers import PROVIDERS, ProviderConfig

__all__ = ["runner_workers", "shared_providers", "shared_with_workers"]


def runner_workers(options: PipelineOptions) -> int:
    """Dataflow's ``--max_num_workers`` (else ``--num_workers``), Flink's and other portable
    runners' ``--parallelism``, the direct runner's ``--direct_num_workers`` in
    ``multi_processing`` mode; else 1. On Dataflow a Python worker VM runs one SDK process per
    vCPU, which these options do not say: pass the product to ``for_workers`` when known."""
    runner = str(options.view_as(StandardOptions).runner or "")
    if "Dataflow" in runner:
        workers = options.view_as(WorkerOptions)
        return max(1, workers.max_num_workers or workers.num_workers or 1)
    if any(name in runner for name in ("Flink", "Portable", "Spark")):
        return max(1, options.view_as(FlinkRunnerOptions).parallelism or 1)
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode == "multi_processing":
        return max(1, direct.direct_num_workers or 1)
    return 1


def shared_with_workers(concurrency: Concurrency, workers: int) -> Concurrency:
    """``concurrency`` as it is when it names its worker count, else told ``workers``."""
    if concurrency.workers is not None:
        return concurrency
    return concurrency.for_workers(workers)


def shared_providers(
    providers: Mapping[str, ProviderConfig], workers: int
) -> dict[str, ProviderConfig]:
    """Every provider's settings (the defaults for those not given), each window told
    ``workers`` unless it names its own count."""
    shared = {}
    for name in PROVIDERS:
        config = providers.get(name) or ProviderConfig()
        concurrency = shared_with_workers(config.concurrency, workers)
        if concurrency != config.concurrency:
            config = config.model_copy(update={"concurrency": concurrency})
        shared[name] = config
    return shared
