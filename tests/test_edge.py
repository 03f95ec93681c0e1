"""The embedded default: Qdrant's own engine (qdrant-edge) behind ``QdrantTarget(path=...)``."""

from __future__ import annotations

import json
import multiprocessing
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from conftest import pipeline_options, run_collect
from qdrant_client import QdrantClient, models

from qdrant_beam import QdrantTarget, WriteToQdrant
from qdrant_beam.connectors import CollectionSchema, DenseVector, SchemaMismatch, SparseVector
from qdrant_beam.connectors.edge import EdgeClient, kind
from qdrant_beam.io.errors import SpecError
from qdrant_beam.pipelines.rebuild import finish_rebuild, plan_rebuild
from qdrant_beam.pipelines.upload import upload

SCHEMA = CollectionSchema(
    "docs",
    {"dense": DenseVector(4), "multi": DenseVector(3, "Dot", multivector=True)},
    {"bm25": SparseVector("idf")},
    {"tag": "keyword"},
)


def point(i: int, dim: int = 4) -> models.PointStruct:
    return models.PointStruct(
        id=i,
        vector={
            "dense": [0.1 * (i + 1), 0.2, 0.3, 0.4][:dim] + [0.5] * max(0, dim - 4),
            "multi": [[1.0, 0.0, float(i)], [0.0, 1.0, 0.0]],
            "bm25": models.SparseVector(indices=[1, i + 2], values=[0.5, 1.0]),
        },
        payload={"tag": f"t{i % 3}", "n": i},
    )


def write(target: QdrantTarget, points: list[models.PointStruct]) -> dict[str, list[Any]]:
    out, _ = run_collect(
        lambda p: p | beam.Create(points) | WriteToQdrant(target, schema=SCHEMA, seed=1)
    )
    return out


def test_the_default_embedded_engine_is_edge(tmp_path: Path) -> None:
    target = QdrantTarget(path=str(tmp_path / "q"))
    assert target.embedded_engine() == "edge"
    assert "qdrant-edge" in target.describe()
    out = write(target, [point(i) for i in range(20)])
    assert sum(len(batch.ids) for batch in out["written"]) == 20
    assert kind(tmp_path / "q") == "edge"
    client = target.connect()
    try:
        info = client.get_collection("docs")
        params = info.config.params
        assert params.vectors["dense"].size == 4
        assert params.vectors["multi"].multivector_config is not None
        assert params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
        assert set(info.payload_schema) == {"tag"}
        hits = client.query_points("docs", query=[0.1, 0.2, 0.3, 0.4], using="dense", limit=3)
        assert len(hits.points) == 3
        (record,) = client.retrieve("docs", [5], with_payload=True, with_vectors=True)
        assert record.payload == {"tag": "t2", "n": 5}
        assert isinstance(record.vector["bm25"], models.SparseVector)
    finally:
        target.release(client)


def test_a_bad_point_is_a_dead_letter_with_the_engines_message(tmp_path: Path) -> None:
    target = QdrantTarget(path=str(tmp_path / "q"))
    points = [point(i) for i in range(10)]
    points[4] = point(4, dim=3)  # wrong dimension
    out = write(target, points)
    (dead,) = out["dead_letters"]
    assert dead.record.id == 4 and dead.stage == "write"
    assert "Vector dimension error: expected dim: 4, got 3" in dead.message
    client = target.connect()
    try:
        assert client.count("docs").count == 9  # the rest of the batch landed
    finally:
        target.release(client)


def test_a_mismatched_store_fails_before_anything_runs(tmp_path: Path) -> None:
    target = QdrantTarget(path=str(tmp_path / "q"))
    write(target, [point(0)])
    other = CollectionSchema("docs", {"dense": DenseVector(8)}, {"bm25": SparseVector("idf")})
    with pytest.raises(SchemaMismatch, match="vector 'dense': size is 8 in the spec but 4"):
        WriteToQdrant(target, schema=other).prepare_collection()


def test_folders_that_are_not_a_store_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(SpecError, match="is not an embedded Qdrant store"):
        WriteToQdrant(QdrantTarget(path=str(foreign)), schema=SCHEMA).prepare_collection()
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"], "nothing written"

    local = tmp_path / "local"
    client = QdrantClient(path=str(local))
    client.create_collection("docs", {"dense": models.VectorParams(size=4, distance="Cosine")})
    client.close()
    assert kind(local) == "local"
    assert QdrantTarget(path=str(local)).embedded_engine() == "local"  # auto: opened as it is
    with pytest.raises(SpecError, match="written by qdrant-client's local mode"):
        EdgeClient(str(local))


def _hold(path: str, ready: Any, done: Any) -> None:
    client = EdgeClient(path)
    client.count("docs")  # opens the shard: edge locks its WAL
    ready.set()
    done.wait(30)
    client.close()


def test_a_folder_another_process_holds_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "q")
    write(QdrantTarget(path=path), [point(0)])
    context = multiprocessing.get_context("spawn")
    ready, done = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(path, ready, done))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(SpecError, match="already open in another process"):
            WriteToQdrant(QdrantTarget(path=path), schema=SCHEMA).prepare_collection()
    finally:
        done.set()
        holder.join(30)


def test_a_store_killed_mid_write_keeps_what_was_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "q"
    code = f"""
import os, signal
from qdrant_client import models
from qdrant_beam.connectors.edge import EdgeClient
c = EdgeClient({str(path)!r}, release_every=100)  # pages handed back lose nothing
c.create_collection("docs", vectors_config={{"v": models.VectorParams(size=2, distance="Dot")}})
for start in range(0, 500, 100):
    c.upsert("docs", points=[models.PointStruct(id=i, vector={{"v": [i, 1.0]}}) for i in
             range(start, start + 100)])
print("acknowledged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL and "acknowledged" in done.stdout
    client = EdgeClient(str(path))
    try:
        assert client.count("docs").count == 500  # replayed from the WAL on open
    finally:
        client.close()


def _resident_bytes(folder: Path) -> int:
    """RSS of this process's maps of files under ``folder``."""
    prefix, total, inside = str(folder.resolve()) + "/", 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split(None, 5)
        if "-" in fields[0] and not fields[0].endswith(":"):
            inside = len(fields) == 6 and fields[5].startswith(prefix)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_PAGEOUT is Linux's")
def test_written_pages_are_handed_back_and_read_back_intact(tmp_path: Path) -> None:
    vectors = {"v": models.VectorParams(size=256, distance=models.Distance.DOT)}
    written = {i: [float(i % 97), *([0.25] * 255)] for i in range(6000)}
    resident = {}
    for every in (0, 1000):
        folder = tmp_path / f"every-{every}"
        client = EdgeClient(str(folder), release_every=every)
        client.create_collection("docs", vectors_config=vectors)
        for start in range(0, 6000, 500):
            ids = range(start, start + 500)
            client.upsert("docs", [models.PointStruct(id=i, vector={"v": written[i]}) for i in ids])
        resident[every] = _resident_bytes(folder)
        if every:
            assert client.pages.released_bytes > 0
            back = client.retrieve("docs", list(written), with_vectors=True)
            assert {r.id: r.vector["v"] for r in back} == written  # type: ignore[index]
        client.close()
    # 6,000 points of 1 KB: without the hand-back every page written stays resident
    assert resident[0] > 6_000_000
    assert resident[1000] < resident[0] / 2


def test_rebuild_switches_an_alias_atomically_and_resumes(tmp_path: Path) -> None:
    client = EdgeClient(str(tmp_path / "q"))
    try:
        plan = plan_rebuild(client, "live")
        assert (plan.target, plan.resumed) == ("live_v1", False)
        SCHEMA.__class__("live_v1", SCHEMA.dense, SCHEMA.sparse).create(client)
        client.upsert("live_v1", points=[point(i) for i in range(5)])
        assert plan_rebuild(client, "live").resumed  # a crash here resumes the same version
        finish_rebuild(client, plan, expected_points=5, keep_versions=1, grace_s=0, log=print)
        assert client.count("live").count == 5
        manifest = json.loads((tmp_path / "q" / "qdrant-beam-edge.json").read_text())
        assert manifest["aliases"] == {"live": "live_v1"}
        second = plan_rebuild(client, "live")
        assert second.target == "live_v2" and second.live == "live_v1"
    finally:
        client.close()


def test_upload_hands_a_collection_to_a_server(tmp_path: Path) -> None:
    from fakes.qdrant import QdrantTestServer

    source = QdrantTarget(path=str(tmp_path / "q"))
    write(source, [point(i) for i in range(30)])
    with QdrantTestServer() as server:
        destination = QdrantTarget(url=server.url)
        result = upload(source, "docs", destination, batch_size=8, emit=lambda line: None)
        assert (result.points, result.failed, result.status) == (30, 0, "created")
        again = upload(source, "docs", destination, batch_size=8, emit=lambda line: None)
        assert (again.points, again.status) == (30, "checked")  # idempotent
        client = server.client()
        try:
            assert client.count("docs").count == 30
            info = client.get_collection("docs").config.params
            assert info.vectors["multi"].multivector_config is not None
            assert info.sparse_vectors["bm25"].modifier == models.Modifier.IDF
            (stored,) = client.retrieve("docs", [7], with_payload=True, with_vectors=True)
            assert stored.payload == {"tag": "t1", "n": 7}
        finally:
            client.close()


def test_runners_with_several_processes_are_refused(tmp_path: Path) -> None:
    options = pipeline_options("--direct_running_mode=multi_processing", "--direct_num_workers=2")
    target = QdrantTarget(path=str(tmp_path / "q"))
    with pytest.raises(SpecError, match="lives in one process"):
        target.check_runner(options)
