"""Many worker processes against one Qdrant: ``qdrant-beam ingest`` on the direct runner with
three worker processes, writing to the REST fake with a concurrency cap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.faults import Faults
from fakes.qdrant import QdrantTestServer
from model_factory import TINY_TEXT_MODEL_NAME

from qdrant_beam.pipelines.jobs import run_ingest
from qdrant_beam.pipelines.options import job_options

WORKERS = 3


@pytest.mark.multiprocess
def test_three_worker_processes_write_every_point_once(
    tmp_path: Path, models_map: dict[str, Any]
) -> None:
    spec = {
        "collection": "docs",
        "id": "{doc_id}",
        "vectors": {
            "dense": {"text": "{title}. {body}", "model": TINY_TEXT_MODEL_NAME},
            "bm25": {"text": "{title}. {body}", "model": "qdrant/bm25"},
        },
        "models": {TINY_TEXT_MODEL_NAME: models_map[TINY_TEXT_MODEL_NAME]},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    good = [
        {"doc_id": f"d{i}", "title": f"Title {i}", "body": f"body of record {i} topic {i % 9}"}
        for i in range(600)
    ]
    bad = [{"doc_id": f"bad{i}", "body": "no title"} for i in range(7)]
    with (tmp_path / "records.jsonl").open("w", encoding="utf-8") as handle:
        for record in [*good[:300], *bad, *good[300:]]:
            handle.write(json.dumps(record) + "\n")
    dead_file = tmp_path / "dead.jsonl"
    cap = Faults(kinds={"upsert"}, max_concurrent=2)  # over the cap: 503, retried
    with QdrantTestServer(faults=cap) as server:
        options = job_options(
            "ingest",
            [
                f"--spec={tmp_path / 'spec.yaml'}",
                f"--input={tmp_path / 'records.jsonl'}",
                f"--qdrant-url={server.url}",
                f"--dead-letter={dead_file}",
                "--upsert-batch-size=16",
                "--progress-interval=0",
                "--runner=DirectRunner",
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={WORKERS}",
            ],
        )
        result = run_ingest(options, emit=lambda line: None)
        stats = server.stats
        client = server.client()
        try:
            stored = client.count("docs", exact=True).count
            ids = {str(p.id) for p in client.scroll("docs", limit=1000)[0]}
        finally:
            client.close()
    assert stored == len(good) == len(ids), "every point landed"
    assert stats.points_upserted == len(good), "none was written twice"
    assert stats.faults.get("over_cap", 0) > 0, "the cap was reached, and retried through"
    assert result.summary.points_written == len(good)
    assert result.summary.dead_letters == {"map/InvalidRecord": len(bad)}
    lines = [json.loads(line) for line in dead_file.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["record"]["doc_id"] for line in lines) == sorted(r["doc_id"] for r in bad)
    assert all(line["stage"] == "map" for line in lines)
    models = 2  # the tiny dense model and BM25, each loaded once in each worker process
    assert models <= result.summary.model_loads <= WORKERS * models
