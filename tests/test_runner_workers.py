"""The worker count the windows share a server with comes from the runner's own options,
unless the settings (or ``--worker-count``) name one."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor

from qdrant_beam import EmbedPoints, QdrantTarget, WriteToQdrant, load_spec
from qdrant_beam.io.window import Concurrency
from qdrant_beam.pipelines.options import UsageError, job_options, worker_count
from qdrant_beam.transforms.workers import runner_workers, shared_providers, shared_with_workers

MULTI = ["--runner=DirectRunner", "--direct_running_mode=multi_processing"]


@pytest.mark.parametrize(
    ("argv", "workers"),
    [
        ([], 1),
        (["--runner=FnApiRunner"], 1),
        (["--runner=DataflowRunner", "--max_num_workers=64", "--num_workers=8"], 64),
        (["--runner=DataflowRunner", "--num_workers=8"], 8),
        (["--runner=FlinkRunner", "--parallelism=16"], 16),
        (["--runner=PortableRunner", "--parallelism=4"], 4),
        ([*MULTI, "--direct_num_workers=3"], 3),
        (["--runner=DirectRunner", "--direct_num_workers=3"], 1),  # threads share one window
    ],
)
def test_runner_workers_reads_the_runners_options(argv: list[str], workers: int) -> None:
    assert runner_workers(PipelineOptions(argv)) == workers


def test_worker_count_option_overrides_the_runner() -> None:
    base = ["--spec=s.yaml", "--input=i.jsonl", "--runner=FlinkRunner", "--parallelism=16"]
    assert worker_count(job_options("ingest", base)) == 16
    assert worker_count(job_options("ingest", [*base, "--worker-count=48"])) == 48
    with pytest.raises(UsageError, match="--worker-count must be at least 1, got 0"):
        worker_count(job_options("ingest", [*base, "--worker-count=0"]))


def test_settings_that_name_a_count_keep_it() -> None:
    assert shared_with_workers(Concurrency(), 16).workers == 16
    assert shared_with_workers(Concurrency().for_workers(4), 16).workers == 4
    assert shared_with_workers(Concurrency(total=32), 16).share == 2.0


def _dofns(pipeline: beam.Pipeline) -> list[Any]:
    found: list[Any] = []

    class Visitor(PipelineVisitor):
        def visit_transform(self, node: Any) -> None:
            if isinstance(node.transform, beam.ParDo):
                found.append(node.transform.fn)

    pipeline.visit(Visitor())
    return found


def test_write_to_qdrant_takes_the_runners_worker_count() -> None:
    pipeline = beam.Pipeline(options=PipelineOptions([*MULTI, "--direct_num_workers=3"]))
    points = pipeline | beam.Create([])
    target = QdrantTarget(url="http://127.0.0.1:9")
    _ = points | "Default" >> WriteToQdrant(target, collection="docs")
    _ = points | "Given" >> WriteToQdrant(
        target, collection="docs", concurrency=Concurrency().for_workers(5)
    )
    sinks = [fn for fn in _dofns(pipeline) if type(fn).__name__ == "_WriteDoFn"]
    assert sorted(fn._config.concurrency.workers for fn in sinks) == [3, 5]
    assert all(fn._config.concurrency.is_shared for fn in sinks)


def test_embed_points_tells_every_provider_the_runners_worker_count() -> None:
    spec = {
        "collection": "docs",
        "id": "{id}",
        "vectors": {"dense": {"text": "{text}", "model": "openai/text-embedding-3-small"}},
        "providers": {"cohere": {"concurrency": {"maximum": 4, "workers": 2}}},
    }
    pipeline = beam.Pipeline(options=PipelineOptions([*MULTI, "--direct_num_workers=3"]))
    _ = pipeline | beam.Create([]) | EmbedPoints(load_spec(spec))
    (embed,) = [fn for fn in _dofns(pipeline) if type(fn).__name__ == "EmbedDoFn"]
    providers = dict(embed._inference._config.providers)
    assert providers["openai"].concurrency.workers == 3
    assert providers["cohere"].concurrency.workers == 2  # named in the spec: kept
    assert providers["cohere"].concurrency.maximum == 4


def test_the_cli_tells_providers_its_worker_count_unless_the_spec_names_one() -> None:
    spec = load_spec(
        {
            "collection": "docs",
            "id": "{id}",
            "vectors": {"dense": {"text": "{text}", "model": "openai/text-embedding-3-small"}},
            "providers": {"cohere": {"concurrency": {"workers": 2}}},
        }
    )
    shared = shared_providers(spec.providers, 48)
    assert shared["openai"].concurrency.workers == 48
    assert shared["cohere"].concurrency.workers == 2
