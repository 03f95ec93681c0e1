"""WriteToQdrant in pipelines against the REST test server and the embedded local mode."""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.rag.ingestion.base import VectorDatabaseWriteTransform
from apache_beam.ml.rag.types import Content, EmbeddableItem, Embedding
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.display import DisplayData
from conftest import counter, run_collect
from fakes.qdrant import Faults, QdrantTestServer
from model_factory import TINY_TEXT_MODEL_NAME
from qdrant_client import models

from qdrant_beam import EmbedPoints, load_spec
from qdrant_beam.connectors import (
    CollectionSchema,
    DenseVector,
    QdrantTarget,
    QdrantVectorWriteConfig,
    RetryPolicy,
    SchemaMismatch,
    SparseVector,
    WriteToQdrant,
)
from qdrant_beam.transforms import SpecError

SCHEMA = CollectionSchema(
    "soak",
    {"big": DenseVector(384), "small": DenseVector(64)},
    {"sparse": SparseVector("idf")},
)
FAST_RETRIES = RetryPolicy(max_attempts=12, initial_backoff_s=0.01, max_backoff_s=0.2)


def make_point(i: int, *, dim: int = 384) -> models.PointStruct:
    rng = random.Random(i)
    return models.PointStruct(
        id=i,
        vector={
            "big": [rng.random() for _ in range(dim)],
            "small": [rng.random() for _ in range(64)],
            "sparse": models.SparseVector(
                indices=sorted(rng.sample(range(30_000), 20)), values=[rng.random()] * 20
            ),
        },
        payload={"n": i, "tag": f"t{i % 7}"},
    )


class _Points(beam.DoFn):
    """Builds points inside the pipeline (creating 20,000 up front is slow to pickle)."""

    def __init__(self, n: int, bad: frozenset[int] = frozenset()) -> None:
        self._n = n
        self._bad = bad

    def process(self, _: Any) -> Iterator[models.PointStruct]:
        for i in range(self._n):
            yield make_point(i, dim=383 if i in self._bad else 384)


@pytest.fixture(scope="module")
def server() -> Iterator[QdrantTestServer]:
    with QdrantTestServer() as srv:
        yield srv


@pytest.fixture
def target(server: QdrantTestServer) -> QdrantTarget:
    server.reset()
    return QdrantTarget(url=server.url, timeout_s=1)


def write(
    target: QdrantTarget, n: int, *, bad: frozenset[int] = frozenset(), **kwargs: Any
) -> tuple[dict[str, list[Any]], Any]:
    kwargs.setdefault("retry_policy", FAST_RETRIES)
    return run_collect(
        lambda p: (
            p
            | beam.Create([None])
            | beam.ParDo(_Points(n, bad))
            | WriteToQdrant(target, schema=SCHEMA, **kwargs)
        )
    )


def stored(server: QdrantTestServer, collection: str = "soak") -> dict[Any, models.Record]:
    with server.lock:
        records, _ = server.local.scroll(
            collection, limit=1_000_000, with_payload=True, with_vectors=True
        )
    return {r.id: r for r in records}


def test_soak_20000_points_with_20_percent_faults_loses_and_duplicates_nothing(
    server: QdrantTestServer, target: QdrantTarget
) -> None:
    server.faults = Faults(
        error_rate=0.13,
        error_statuses=(429, 500, 502, 503),
        retry_after_s=0,
        reset_rate=0.05,
        timeout_rate=0.02,
        apply_then_fail=False,
        hold_s=2.0,
        seed=20,
    )
    out, result = write(target, 20_000, upsert_batch_size=128, window_max=4)
    assert not out["dead_letters"]
    written = [pid for batch in out["written"] for pid in batch.ids]
    assert sorted(written) == list(range(20_000))
    points = stored(server)
    assert len(points) == 20_000 and server.local.count("soak").count == 20_000
    for i in (0, 1, 9_999, 19_999, *random.Random(5).sample(range(20_000), 50)):
        want = make_point(i)
        got = points[i]
        assert got.payload == want.payload
        small = np.asarray(want.vector["small"])  # Cosine: Qdrant stores it normalised
        np.testing.assert_allclose(got.vector["small"], small / np.linalg.norm(small), atol=1e-6)
        assert got.vector["sparse"].indices == want.vector["sparse"].indices
        assert len(got.vector["big"]) == 384
    stats = server.stats
    assert sum(n for kind, n in stats.faults.items() if kind != "over_cap") > 0.15 * 200
    assert counter(result, "points_written") == 20_000
    retries = sum(
        counter(result, name)
        for name in (
            "retries_rate_limited",
            "retries_http_500",
            "retries_http_502",
            "retries_http_503",
            "retries_connection",
            "retries_timeout",
        )
    )
    assert retries > 0


def test_poisoned_batch_lands_everything_but_the_bad_point(
    server: QdrantTestServer, target: QdrantTarget
) -> None:
    out, result = write(target, 300, bad=frozenset({123}))
    (dead,) = out["dead_letters"]
    assert dead.record.id == 123 and dead.stage == "write"
    assert dead.error_type == "RejectedPoints" and "expected dim: 384, got 383" in dead.message
    assert sorted(stored(server)) == [i for i in range(300) if i != 123]
    assert counter(result, "dead_letters", "qdrant_beam.write") == 1


def test_points_without_a_valid_id_go_to_dead_letters(
    server: QdrantTestServer, target: QdrantTarget
) -> None:
    points = [make_point(1), make_point(2).model_copy(update={"id": "not-a-uuid"})]
    points.append(models.PointStruct.model_construct(vector=make_point(3).vector))
    out, _ = run_collect(lambda p: p | beam.Create(points) | WriteToQdrant(target, schema=SCHEMA))
    dead = sorted(str(getattr(d.record, "id", "none")) for d in out["dead_letters"])
    assert dead == ["none", "not-a-uuid"]
    assert list(stored(server)) == [1]


def test_replayed_input_overwrites_and_never_duplicates(
    server: QdrantTestServer, target: QdrantTarget
) -> None:
    server.faults = Faults(error_rate=0.3, error_statuses=(500,), apply_then_fail=True, seed=3)
    write(target, 500)
    write(target, 500)  # the same bundle replayed
    assert server.local.count("soak").count == 500


def test_backpressure_never_exceeds_the_window_and_the_window_shrinks(
    server: QdrantTestServer, target: QdrantTarget
) -> None:
    server.faults = Faults(max_concurrent=2, latency_s=0.02, kinds=frozenset({"upsert"}))
    out, result = write(target, 2_000, upsert_batch_size=32, window_initial=6, window_max=6)
    assert not out["dead_letters"]
    assert server.local.count("soak").count == 2_000
    stats = server.stats
    assert stats.faults.get("over_cap", 0) > 0  # the cap pushed back with 503s...
    assert counter(result, "retries_http_503") > 0
    assert server.max_concurrent_seen <= 6 + 1  # ...never more than the window (+ one check)
    gauge = result.metrics().query(beam.metrics.MetricsFilter().with_name("window_size"))["gauges"]
    assert gauge and gauge[0].committed.value < 6  # the window shrank below its start


def test_schema_mismatch_fails_before_any_write_or_inference(
    server: QdrantTestServer, target: QdrantTarget, models_map: dict[str, Any]
) -> None:
    client = target.connect()
    CollectionSchema("docs", {"dense": DenseVector(8)}, {"bm25": SparseVector("none")}).create(
        client
    )
    target.release(client)
    spec = load_spec(
        {
            "collection": "docs",
            "id": "{id}",
            "vectors": {
                "dense": {"text": "{t}", "model": TINY_TEXT_MODEL_NAME},
                "bm25": {"text": "{t}", "model": "qdrant/bm25"},
            },
            "models": models_map,
        }
    )
    server.reset_stats()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    points, _ = pipeline | beam.Create([{"id": 1, "t": "x"}]) | EmbedPoints(spec)
    with pytest.raises(SchemaMismatch) as err:
        _ = points | WriteToQdrant(target, spec=spec)
    message = str(err.value)
    assert "vector 'dense': size is 16 in the spec but 8 in Qdrant" in message
    assert "vector 'bm25': sparse modifier is 'idf' in the spec but 'none' in Qdrant" in message
    assert server.stats.points_received == 0  # nothing was written, nothing was run


def test_collection_is_created_from_the_spec(
    server: QdrantTestServer, target: QdrantTarget, models_map: dict[str, Any]
) -> None:
    spec = load_spec(
        {
            "collection": "made",
            "id": "{id}",
            "payload_indexes": {"lang": "keyword"},
            "vectors": {
                "dense": {"text": "{t}", "model": TINY_TEXT_MODEL_NAME, "distance": "Dot"},
                "mrl": {"text": "{t}", "model": TINY_TEXT_MODEL_NAME, "options": {"mrl": 4}},
                "bm25": {"text": "{t}", "model": "qdrant/bm25"},
                "colbert": {"text": "{t}", "model": "colbert-ir/colbertv2.0"},
            },
            "models": models_map,
        }
    )
    sink = WriteToQdrant(target, spec=spec)
    assert sink.prepare_collection() == "created"
    assert sink.prepare_collection() == "checked"
    client = target.connect()
    info = client.get_collection("made")
    vectors = info.config.params.vectors
    assert vectors["dense"].size == 16 and vectors["dense"].distance == models.Distance.DOT
    assert vectors["mrl"].size == 4
    assert vectors["colbert"].multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    assert info.config.params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert server.payload_indexes["made"] == {"lang": "keyword"}
    target.release(client)


def test_embedded_local_mode_end_to_end(tmp_path: Path, models_map: dict[str, Any]) -> None:
    target = QdrantTarget(path=str(tmp_path / "qdrant"))
    spec = load_spec(
        {
            "collection": "local",
            "id": "{id}",
            "vectors": {"dense": {"text": "{t}", "model": TINY_TEXT_MODEL_NAME}},
            "models": models_map,
        }
    )
    rows = [{"id": i, "t": f"text number {i}"} for i in range(50)]

    def build(p: beam.Pipeline) -> Any:
        points, _ = p | beam.Create(rows) | EmbedPoints(spec)
        return points | WriteToQdrant(target, spec=spec)

    out, _ = run_collect(build)
    assert sum(len(b.ids) for b in out["written"]) == 50
    client = target.connect()
    assert client.count("local").count == 50
    target.release(client)


def test_embedded_local_folder_is_refused_on_multi_process_runners(tmp_path: Path) -> None:
    target = QdrantTarget(path=str(tmp_path / "q"))
    options = PipelineOptions(
        [
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ]
    )
    pipeline = beam.Pipeline(options=options)
    with pytest.raises(SpecError, match=r"lives in one process.*QdrantTarget\(url=\.\.\.\)"):
        _ = pipeline | beam.Create([make_point(1)]) | WriteToQdrant(target, schema=SCHEMA)


def test_direct_runner_multi_processing_against_the_rest_server(
    server: QdrantTestServer, target: QdrantTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker processes import this module to unpickle make_point.
    tests_dir = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]))
    options = PipelineOptions(
        [
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ]
    )
    with beam.Pipeline(options=options) as p:
        _ = (
            p
            | beam.Create(list(range(8)))
            | beam.Reshuffle()
            | beam.FlatMap(lambda k: (make_point(k * 100 + j) for j in range(100)))
            | WriteToQdrant(target, schema=SCHEMA, upsert_batch_size=64)
        )
    assert server.local.count("soak").count == 800


def test_vector_database_write_config_plugs_into_beam_rag(
    server: QdrantTestServer, target: QdrantTarget
) -> None:
    schema = CollectionSchema("rag", {"dense": DenseVector(3)}, {"sparse": SparseVector()})
    config = QdrantVectorWriteConfig(target, schema)
    items = [
        EmbeddableItem(
            content=Content(text=f"chunk {i}"),
            id=f"doc-{i}",
            metadata={"source": "s"},
            embedding=Embedding(dense_embedding=[0.1, 0.2, 0.3], sparse_embedding=([i], [1.0])),
        )
        for i in range(5)
    ]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = p | beam.Create(items) | VectorDatabaseWriteTransform(config)
    records = stored(server, "rag")
    assert len(records) == 5
    assert {r.payload["content"] for r in records.values()} == {f"chunk {i}" for i in range(5)}


def test_no_secret_in_display_data_or_the_pickled_graph(
    server: QdrantTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QDRANT_API_KEY", "sentinel-secret-123")
    target = QdrantTarget(url=server.url)
    sink = WriteToQdrant(target, schema=SCHEMA, manage_collection=False)
    shown = DisplayData.create_from(sink).items
    assert all("sentinel-secret-123" not in str(item.value) for item in shown)
    assert b"sentinel-secret-123" not in pickle.dumps(sink)
    assert os.environ["QDRANT_API_KEY"] == "sentinel-secret-123"


def test_api_key_is_read_on_the_worker_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with QdrantTestServer(api_key="sentinel-secret-123") as srv:
        monkeypatch.setenv("MY_QDRANT_KEY", "sentinel-secret-123")
        target = QdrantTarget(url=srv.url, api_key_env="MY_QDRANT_KEY")
        schema = CollectionSchema("auth", {"big": DenseVector(384), "small": DenseVector(64)})
        schema = CollectionSchema("auth", schema.dense, SCHEMA.sparse)
        with pytest.warns(UserWarning, match="insecure"):
            out, _ = run_collect(
                lambda p: (
                    p
                    | beam.Create([make_point(i) for i in range(3)])
                    | WriteToQdrant(target, schema=schema)
                )
            )
        assert sum(len(b.ids) for b in out["written"]) == 3
