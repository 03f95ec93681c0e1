"""The CLI end to end: ingest from JSONL/Parquet/CSV, dead letters, incremental reindex in
sequence, rebuild behind an alias while a reader queries, a killed run that converges on
re-run, and one run through Beam's portable job service."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions
from conftest import TEXT_DIM
from fakes.qdrant import Faults, QdrantTestServer
from model_factory import TINY_TEXT_MODEL_NAME

from qdrant_beam.connectors import QdrantTarget
from qdrant_beam.pipelines.cli import main
from qdrant_beam.pipelines.content_hash import CONTENT_HASH_FIELD
from qdrant_beam.pipelines.jobs import JobResult, run_ingest, run_reindex

REPO = Path(__file__).resolve().parent.parent


def make_records(n: int, *, start: int = 0, edit: set[int] = frozenset()) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        body = f"body of record {i} about topic {i % 7}"
        if i in edit:
            body += " (edited)"
        out.append({"doc_id": f"doc-{i}", "title": f"Title {i}", "body": body, "n": i})
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]], extra_lines: list[str] = ()) -> Path:
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def spec_file(tmp_path: Path, models_map: dict[str, Any]) -> Path:
    spec = {
        "collection": "docs",
        "id": "{doc_id}",
        "payload": {"include": ["doc_id", "title", "n"]},
        "vectors": {
            "dense": {"text": "{title}. {body}", "model": TINY_TEXT_MODEL_NAME},
            "dense_4": {
                "text": "{title}. {body}",
                "model": TINY_TEXT_MODEL_NAME,
                "options": {"mrl": 4},
            },
            "bm25": {"text": "{title}. {body}", "model": "qdrant/bm25"},
        },
        "models": {TINY_TEXT_MODEL_NAME: models_map[TINY_TEXT_MODEL_NAME]},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def job_options(*args: str) -> PipelineOptions:
    return PipelineOptions(["--runner=FnApiRunner", "--progress-interval=0", *args])


def ingest(*args: str) -> JobResult:
    return run_ingest(job_options(*args), emit=lambda line: None)


def reindex(*args: str) -> JobResult:
    return run_reindex(job_options(*args), emit=lambda line: None)


def local_points(path: Path, collection: str = "docs") -> dict[str, Any]:
    target = QdrantTarget(path=str(path))
    client = target.connect()
    try:
        records, _ = client.scroll(collection, limit=10_000, with_vectors=True)
        return {r.payload["doc_id"]: r for r in records}
    finally:
        target.release(client)


# -- ingest -------------------------------------------------------------------------------


def test_ingest_jsonl_with_malformed_lines(spec_file: Path, tmp_path: Path, capsys: Any) -> None:
    data = write_jsonl(
        tmp_path / "in.jsonl", make_records(20), ['{"doc_id": "broken', "[1, 2]", ""]
    )
    dead = tmp_path / "dead.jsonl"
    code = main(
        [
            "ingest",
            f"--spec={spec_file}",
            f"--input={data}",
            f"--qdrant-path={tmp_path / 'q'}",
            f"--dead-letter={dead}",
            "--progress-interval=0",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "records read:      20" in out
    assert "points written:    20" in out
    assert "read/InvalidJSON: 1" in out and "read/NotAnObject: 1" in out
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert sorted(line["error_type"] for line in lines) == ["InvalidJSON", "NotAnObject"]
    assert {line["stage"] for line in lines} == {"read"}
    assert any(line["record"]["line"] == '{"doc_id": "broken' for line in lines)
    points = local_points(tmp_path / "q")
    assert len(points) == 20
    point = points["doc-3"]
    assert len(point.vector["dense"]) == TEXT_DIM and len(point.vector["dense_4"]) == 4
    assert point.vector["bm25"].indices
    assert point.payload["title"] == "Title 3" and "body" not in point.payload


def test_ingest_parquet_and_csv_give_the_same_points(spec_file: Path, tmp_path: Path) -> None:
    records = make_records(12)
    table = pa.Table.from_pylist(
        [{**r, "unused": "x" * 10} for r in records]
    )  # the projection leaves `unused` out
    pq.write_table(table, tmp_path / "in.parquet")
    with open(tmp_path / "in.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    parquet = ingest(
        f"--spec={spec_file}", f"--input={tmp_path / 'in.parquet'}", f"--qdrant-path={tmp_path}/p"
    )
    as_csv = ingest(
        f"--spec={spec_file}", f"--input={tmp_path / 'in.csv'}", f"--qdrant-path={tmp_path}/c"
    )
    assert parquet.summary.points_written == as_csv.summary.points_written == 12
    from_parquet = local_points(tmp_path / "p")
    from_csv = local_points(tmp_path / "c")
    assert from_parquet.keys() == from_csv.keys()
    for key, point in from_parquet.items():
        assert point.vector["dense"] == pytest.approx(from_csv[key].vector["dense"], abs=1e-6)
        assert "unused" not in point.payload
    assert from_parquet["doc-5"].payload["n"] == 5  # typed in Parquet
    assert from_csv["doc-5"].payload["n"] == "5"  # CSV values are text


def test_ingest_needs_spec_input_and_one_target(spec_file: Path, capsys: Any) -> None:
    assert main(["ingest", "--input=x.jsonl", "--qdrant-path=q"]) == 2
    assert "--spec" in capsys.readouterr().err
    assert main(["ingest", f"--spec={spec_file}", "--input=x.jsonl"]) == 2
    assert "exactly one of --qdrant-url" in capsys.readouterr().err


def test_progress_counts_records_done_not_read() -> None:
    """Reading races ahead of embedding: the rate and ETA follow what is written, unchanged
    or failed."""
    from qdrant_beam.pipelines import summary

    job = "progress-test"
    with summary.ProgressReporter(job, interval_s=0, total=1000, emit=print) as reporter:
        reporter._started -= 10.0  # ten seconds into the job
        with summary._LOCK:
            summary._PROGRESS[job].update(read=900, written=150, skipped=40, failed=10)
        line = reporter.line()
    assert line.startswith("progress: 200 of 1,000 records done (20.0%): 150 points written, ")
    assert "40 unchanged, 10 failed; 900 read; 20 records/s; ETA 40 s; 10 s elapsed" in line


def test_job_help_lists_options(capsys: Any) -> None:
    assert main(["reindex", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--delete-missing" in out and "--dead-letter" in out


def test_console_entry_runs_the_cli_and_package_import_stays_light(spec_file: Path) -> None:
    """``python -m qdrant_beam`` is what the ``qdrant-beam`` script runs; the package itself
    loads Beam only when one of its names is used, so the entry can tune start-up first."""
    proc = subprocess.run(
        [sys.executable, "-m", "qdrant_beam", "validate", str(spec_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "dense:" in proc.stdout
    code = (
        "import sys, qdrant_beam; assert 'apache_beam' not in sys.modules; "
        "from qdrant_beam import EmbedPoints, QdrantTarget, WriteToQdrant, load_spec; "
        "assert 'apache_beam' in sys.modules; "
        "print(EmbedPoints.__name__, load_spec.__name__, QdrantTarget.__name__, "
        "WriteToQdrant.__name__)"
    )
    light = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert light.returncode == 0, light.stderr
    assert light.stdout.split() == ["EmbedPoints", "load_spec", "QdrantTarget", "WriteToQdrant"]


# -- incremental reindex ------------------------------------------------------------------


def test_incremental_reindex_sequence(spec_file: Path, tmp_path: Path) -> None:
    qdrant = tmp_path / "q"
    data = tmp_path / "in.jsonl"
    args = [f"--spec={spec_file}", f"--input={data}", f"--qdrant-path={qdrant}"]

    write_jsonl(data, make_records(40))
    first = reindex(*args)
    assert first.summary.reindex == {"added": 40}
    assert first.summary.points_written == 40
    stored = local_points(qdrant)
    assert all(CONTENT_HASH_FIELD in p.payload for p in stored.values())

    again = reindex(*args)
    assert again.summary.reindex == {"skipped": 40}
    assert again.summary.model_calls == 0 and again.summary.inference_objects == 0
    assert again.summary.points_written == 0

    edited = {1, 7, 13, 22}  # 10 %
    deleted = {30, 31}  # 5 %
    records = [r for r in make_records(40, edit=edited) if r["n"] not in deleted]
    records += make_records(3, start=100)
    write_jsonl(data, records)
    third = reindex(*args, "--delete-missing")
    assert third.summary.reindex == {
        "skipped": 34,
        "updated": 4,
        "added": 3,
        "missing": 2,
        "deleted": 2,
    }
    assert third.summary.model_inputs == 2 * 7  # dense (+ its MRL) and bm25 per changed record
    after = local_points(qdrant)
    assert len(after) == 41
    assert "doc-30" not in after and "doc-100" in after
    assert after["doc-1"].payload[CONTENT_HASH_FIELD] != stored["doc-1"].payload[CONTENT_HASH_FIELD]
    assert after["doc-2"].payload[CONTENT_HASH_FIELD] == stored["doc-2"].payload[CONTENT_HASH_FIELD]
    assert after["doc-1"].vector["dense"] != pytest.approx(stored["doc-1"].vector["dense"])


def test_changing_the_spec_reembeds_everything(spec_file: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", make_records(10))
    args = [f"--spec={spec_file}", f"--input={data}", f"--qdrant-path={tmp_path / 'q'}"]
    reindex(*args)
    spec = yaml.safe_load(spec_file.read_text())
    spec["vectors"]["bm25"]["options"] = {"k": 1.5}
    spec_file.write_text(yaml.safe_dump(spec))
    assert reindex(*args).summary.reindex == {"updated": 10}


# -- rebuild behind an alias --------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[QdrantTestServer]:
    with QdrantTestServer() as srv:
        yield srv


def test_incremental_lookups_over_rest_survive_transient_errors(
    spec_file: Path, tmp_path: Path, server: QdrantTestServer
) -> None:
    """The stored hashes are looked up by id over REST, on threads; a 503 and a 429 on those
    lookups are retried, and the counts come out exact."""
    data = write_jsonl(tmp_path / "in.jsonl", make_records(30))
    args = [f"--spec={spec_file}", f"--input={data}", f"--qdrant-url={server.url}"]
    assert reindex(*args).summary.reindex == {"added": 30}
    server.faults = Faults(kinds=frozenset({"retrieve"}), script=(503, 429), retry_after_s=0)
    again = reindex(*args)
    assert again.summary.reindex == {"skipped": 30}
    assert again.summary.model_calls == 0 and again.summary.points_written == 0
    assert server.stats.faults == {"503": 1, "429": 1}
    write_jsonl(data, make_records(30, edit={3}) + make_records(2, start=50))
    third = reindex(*args)
    assert third.summary.reindex == {"skipped": 29, "updated": 1, "added": 2}
    assert server.client().count("docs", exact=True).count == 32


def test_rebuild_switches_the_alias_while_a_reader_queries(
    spec_file: Path, tmp_path: Path, server: QdrantTestServer
) -> None:
    data = tmp_path / "in.jsonl"
    args = [
        f"--spec={spec_file}",
        f"--input={data}",
        f"--qdrant-url={server.url}",
        "--mode=rebuild",
    ]
    write_jsonl(data, make_records(30))
    first = reindex(*args)
    assert first.collection == "docs"
    client = server.client()
    assert client.count("docs", exact=True).count == 30

    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        reader = server.client()
        while not stop.is_set():
            try:
                seen.append(reader.count("docs", exact=True).count)
            except BaseException as exc:  # any failure is a partial index seen by a reader
                errors.append(exc)
            time.sleep(0.005)

    write_jsonl(data, make_records(45))
    thread = threading.Thread(target=read)
    thread.start()
    try:
        second = reindex(*args, "--keep-versions=0")
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert set(seen) <= {30, 45} and 30 in seen
    assert second.summary.reindex == {"added": 45}
    assert client.count("docs", exact=True).count == 45
    names = {c.name for c in client.get_collections().collections}
    assert names == {"docs_v2"}  # v1 dropped (keep 0 old versions)
    assert {a.alias_name: a.collection_name for a in client.get_aliases().aliases} == {
        "docs": "docs_v2"
    }


def test_rebuild_refuses_a_plain_collection_of_the_alias_name(
    spec_file: Path, tmp_path: Path, server: QdrantTestServer
) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", make_records(3))
    ingest(f"--spec={spec_file}", f"--input={data}", f"--qdrant-url={server.url}")
    with pytest.raises(Exception, match="is a collection, but a rebuild serves"):
        reindex(
            f"--spec={spec_file}", f"--input={data}", f"--qdrant-url={server.url}", "--mode=rebuild"
        )


# -- crash and converge -------------------------------------------------------------------


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "qdrant_beam", *args, "--progress-interval=0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("mode", ["incremental", "rebuild"])
def test_a_killed_run_converges_when_run_again(
    spec_file: Path, tmp_path: Path, server: QdrantTestServer, mode: str
) -> None:
    n = 600
    data = write_jsonl(tmp_path / "in.jsonl", make_records(n))
    args = [
        "reindex",
        f"--spec={spec_file}",
        f"--input={data}",
        f"--qdrant-url={server.url}",
        f"--mode={mode}",
        "--upsert-batch-size=16",
        "--batch-size=32",
    ]
    server.faults = Faults(latency_s=0.05)  # slow enough to kill mid-run
    proc = _cli(*args)
    deadline = time.monotonic() + 120
    while server.stats.points_upserted < 64 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    landed = server.stats.points_upserted
    assert 0 < landed < n
    server.faults = Faults()

    rerun = _cli(*args)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    client = server.client()
    assert client.count("docs", exact=True).count == n
    if mode == "incremental":
        assert "skipped" in out  # what landed before the kill is not embedded again
    else:
        assert "(resuming)" in out
        assert {a.alias_name: a.collection_name for a in client.get_aliases().aliases} == {
            "docs": "docs_v1"
        }
    records, _ = client.scroll("docs", limit=n + 10)
    assert len({r.id for r in records}) == n


# -- portable runner ----------------------------------------------------------------------


@pytest.mark.portable
def test_ingest_through_the_portable_runner(
    spec_file: Path, tmp_path: Path, server: QdrantTestServer, job_endpoint: str
) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", make_records(15), ["not json"])
    result = run_ingest(
        PipelineOptions(
            [
                "--runner=PortableRunner",
                f"--job_endpoint={job_endpoint}",
                "--environment_type=LOOPBACK",
                f"--spec={spec_file}",
                f"--input={data}",
                f"--qdrant-url={server.url}",
                f"--dead-letter={tmp_path / 'dead.jsonl'}",
            ]
        ),
        emit=lambda line: None,
    )
    assert server.client().count("docs", exact=True).count == 15
    assert result.summary.points_written == 15
    assert len((tmp_path / "dead.jsonl").read_text().splitlines()) == 1
