"""The transforms end to end on Beam runners: FnApiRunner, and the portable job service."""

from __future__ import annotations

import gc
import time
from typing import Any

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from conftest import TEXT_DIM, counter, run_collect
from model_factory import COLBERT_MODEL_NAME, TINY_TEXT_MODEL_NAME
from qdrant_client import models

from qdrant_beam import EmbedPoints, RecordsToPoints, ResolveInference, load_spec
from qdrant_beam.transforms import FailedRecord, PointsSpec

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "river",
    "mountain",
    "coffee",
    "music",
    "vector",
    "search",
    "payload",
    "filter",
]


def records(n: int, *, repeat: int = 1) -> list[dict[str, Any]]:
    """n records whose text repeats every ``n // repeat`` records."""
    unique = max(1, n // repeat)
    return [
        {
            "id": i,
            "title": f"{WORDS[i % unique % len(WORDS)]} {WORDS[(i % unique) // len(WORDS) % 12]}",
            "body": " ".join(WORDS[(i % unique + k) % len(WORDS)] for k in range(6)),
            "n": i,
        }
        for i in range(n)
    ]


@pytest.fixture
def spec(models_map: dict[str, Any]) -> PointsSpec:
    return load_spec(
        {
            "collection": "docs",
            "id": "{id}",
            "vectors": {
                "dense": {"text": "{title}. {body}", "model": TINY_TEXT_MODEL_NAME},
                "dense_4": {
                    "text": "{title}. {body}",
                    "model": TINY_TEXT_MODEL_NAME,
                    "options": {"mrl": 4},
                },
                "bm25": {"text": "{body}", "model": "qdrant/bm25"},
                "colbert": {"text": "{title}", "model": COLBERT_MODEL_NAME},
            },
            "models": models_map,
        }
    )


def test_embed_points_on_fnapi_runner(spec: PointsSpec) -> None:
    good = records(40, repeat=4)  # 10 unique texts per vector
    bad = [{"id": 100, "title": None, "body": "x"}, {"id": 101, "title": "t", "body": "  "}]
    thresholds = gc.get_threshold()
    out, result = run_collect(
        lambda p: p | beam.Create(good + bad) | EmbedPoints(spec, batch_size=64)
    )
    # The collector is left alone: httpx's response cycles hold request bodies until a young
    # collection, so a raised threshold made a streaming job's memory grow with its input.
    assert gc.get_threshold() == thresholds
    points = {p.id: p for p in out["points"]}
    assert sorted(points) == list(range(40))
    dead: list[FailedRecord] = out["dead_letters"]
    assert sorted(d.record["id"] for d in dead) == [100, 101]
    assert {d.stage for d in dead} == {"map"}
    sample = points[0]
    assert len(sample.vector["dense"]) == TEXT_DIM and len(sample.vector["dense_4"]) == 4
    assert isinstance(sample.vector["bm25"], models.SparseVector)
    assert len(sample.vector["colbert"][0]) == 128
    assert sample.payload == {"id": 0, "title": good[0]["title"], "body": good[0]["body"], "n": 0}
    # Dedup, through Beam counters: objects 40 x 4, unique inputs = model inputs.
    assert counter(result, "inference_objects") == 160
    unique_texts = len({(r["title"], r["body"]) for r in good})
    unique_bodies = len({r["body"] for r in good})
    unique_titles = len({r["title"] for r in good})
    assert counter(result, "model_inputs") == unique_texts + unique_bodies + unique_titles
    assert counter(result, "model_calls") == 3  # one batch, three models (dense serves MRL)
    assert counter(result, "records_mapped") == 40
    assert counter(result, "dead_letters", "qdrant_beam.map") == 2


def test_global_dedup_embeds_each_input_once_across_batches(spec: PointsSpec) -> None:
    data = records(60, repeat=6)  # 10 unique texts, spread over batches of 8
    out, result = run_collect(
        lambda p: p | beam.Create(data) | EmbedPoints(spec, batch_size=8, dedup="global")
    )
    assert sorted(p.id for p in out["points"]) == list(range(60))
    assert not out["dead_letters"]
    unique = len({(r["title"], r["body"]) for r in data})
    unique += len({r["body"] for r in data}) + len({r["title"] for r in data})
    assert counter(result, "model_inputs") == unique
    by_id = {p.id: p for p in out["points"]}
    np.testing.assert_allclose(by_id[0].vector["dense"], by_id[10].vector["dense"])


def test_global_and_batch_modes_give_the_same_vectors(spec: PointsSpec) -> None:
    data = records(12, repeat=2)

    def build(p: beam.Pipeline) -> dict[str, Any]:
        rows = p | beam.Create(data)
        batch, _ = rows | "B" >> EmbedPoints(spec, batch_size=5)
        glob, _ = rows | "G" >> EmbedPoints(spec, batch_size=5, dedup="global")
        return {"batch": batch, "global": glob}

    out, _ = run_collect(build)
    batch = {p.id: p.vector for p in out["batch"]}
    glob = {p.id: p.vector for p in out["global"]}
    assert batch.keys() == glob.keys()
    for pid in batch:
        np.testing.assert_allclose(batch[pid]["dense"], glob[pid]["dense"], atol=1e-6)
        assert batch[pid]["bm25"] == glob[pid]["bm25"]


def test_resolve_inference_takes_points_built_for_server_side_inference(
    models_map: dict[str, Any],
) -> None:
    points = [
        models.PointStruct(
            id=i,
            vector={
                "dense": models.Document(text=f"{WORDS[i]} text", model=TINY_TEXT_MODEL_NAME),
                "sparse": models.Document(text=f"{WORDS[i]} text", model="Qdrant/bm25"),
            },
            payload={"i": i},
        )
        for i in range(5)
    ]
    points.append(
        models.PointStruct(id=99, vector={"dense": models.Document(text="x", model="nope/x")})
    )
    out, _ = run_collect(lambda p: p | beam.Create(points) | ResolveInference(models=models_map))
    assert sorted(p.id for p in out["points"]) == [0, 1, 2, 3, 4]
    (dead,) = out["dead_letters"]
    assert dead.record.id == 99 and "unknown model 'nope/x'" in dead.message


def test_records_to_points_alone(spec: PointsSpec) -> None:
    out, _ = run_collect(lambda p: p | beam.Create(records(3)) | RecordsToPoints(spec))
    points = sorted(out["points"], key=lambda p: p.id)
    assert [p.id for p in points] == [0, 1, 2]  # all() below must not pass on no points
    assert all(isinstance(p.vector["dense"], models.Document) for p in points)
    assert points[1].vector["dense"].text == "{title}. {body}".format(**records(3)[1])


def test_a_missing_model_fails_before_the_pipeline_runs(tmp_path: Any) -> None:
    spec = load_spec(
        {
            "collection": "c",
            "id": "{id}",
            "vectors": {"v": {"text": "{t}", "model": "BAAI/bge-small-en-v1.5"}},
            "models": {"BAAI/bge-small-en-v1.5": {"path": str(tmp_path / "absent")}},
        }
    )
    started = time.monotonic()
    with pytest.raises(Exception, match=r"model 'BAAI/bge-small-en-v1.5' was not found"):
        EmbedPoints(spec)
    assert time.monotonic() - started < 5
    EmbedPoints(spec, check_models=False)  # folders that exist only on workers


def test_models_checked_at_launch_load_on_first_use(spec: PointsSpec) -> None:
    """An unchanged reindex embeds nothing, so its workers should load no model either."""
    checked = ResolveInference.from_spec(spec)
    unchecked = ResolveInference.from_spec(spec, check_models=False)
    assert checked.store_config.preload == ()  # folders found at launch: load lazily
    # folders only on workers: load in setup, fail before the first element
    assert {m for m, _, _ in unchecked.store_config.preload} == {
        spec.model_info(name).name for name in spec.vectors
    }


# -- the portable job service: DoFns pickle and run as on Dataflow and Flink -------------------


@pytest.mark.portable
def test_embed_points_through_portable_runner(spec: PointsSpec, job_endpoint: str) -> None:
    options = PipelineOptions(
        [
            "--runner=PortableRunner",
            f"--job_endpoint={job_endpoint}",
            "--environment_type=LOOPBACK",
        ]
    )
    data = records(10, repeat=2)
    with beam.Pipeline(options=options) as p:
        points, dead = p | beam.Create(data) | EmbedPoints(spec, batch_size=4)
        assert_that(points | beam.Map(lambda pt: pt.id), equal_to(list(range(10))))
        assert_that(
            points
            | "Sizes" >> beam.Map(lambda pt: (len(pt.vector["dense"]), len(pt.vector["dense_4"]))),
            equal_to([(TEXT_DIM, 4)] * 10),
            label="sizes",
        )
        assert_that(dead, equal_to([]), label="nodead")
    result = p.result
    assert counter(result, "inference_objects") == 40
