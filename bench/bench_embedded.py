"""The embedded engines side by side: qdrant-edge (the default) against qdrant-client's local mode.

* ``ingest``: ``WriteToQdrant`` of N points (384-d and 64-d dense vectors, a 20-nonzero sparse
  vector, a small payload; built inside the pipeline, as ``bench_sink.py`` builds them) into a
  fresh folder, on FnApiRunner, for each engine. Points/s of the whole pipeline; the stored
  count is checked.
* ``query``: on the stores just written, the latency of dense-384 queries and of the hybrid
  query ``qdrant-beam query`` sends (MRL-64 prefetch rescored on 384, fused with the sparse
  vector by RRF), p50 and p95 over the same random queries; the time to open each store too.
  Edge is measured as written (no ``optimize()``, so its segment is scanned, not HNSW-indexed).

Run: ``python bench/bench_embedded.py --json bench/results/embedded.json`` (about 6 minutes
at N = 100,000, most of it local mode's ingest).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from qdrant_client import models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sink import BIG, NNZ, SCHEMA, SMALL, _Generate

from qdrant_beam.connectors import QdrantTarget, WriteToQdrant

ENGINES = ("edge", "local")
MS_PER_S = 1000


def ingest(folder: Path, engine: str, n: int) -> tuple[float, int]:
    """Seconds to write ``n`` points through the sink, and the count stored."""
    target = QdrantTarget(path=str(folder), engine=engine)
    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        points = p | beam.Create([None]) | beam.ParDo(_Generate(n))
        _ = points | WriteToQdrant(target, schema=SCHEMA, upsert_batch_size=256)
    elapsed = time.perf_counter() - started
    client = target.connect()
    try:
        count = client.count(SCHEMA.name, exact=True).count
    finally:
        target.release(client)
    return elapsed, count


def _queries(k: int) -> list[tuple[list[float], list[float], models.SparseVector]]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(k):
        big = rng.random(BIG)
        small = big[:SMALL] / np.linalg.norm(big[:SMALL])
        indices = sorted(int(i) for i in rng.choice(30_000, NNZ, replace=False))
        sparse = models.SparseVector(indices=indices, values=[1.0] * NNZ)
        out.append(((big / np.linalg.norm(big)).tolist(), small.tolist(), sparse))
    return out


def _hybrid(client: Any, big: list[float], small: list[float], sparse: Any) -> Any:
    dense = models.Prefetch(
        query=big,
        using="big",
        prefetch=models.Prefetch(query=small, using="small", limit=50),
        limit=50,
    )
    return client.query_points(
        SCHEMA.name,
        prefetch=[dense, models.Prefetch(query=sparse, using="sparse", limit=50)],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=10,
    )


def query(folder: Path, engine: str, k: int) -> dict[str, float]:
    target = QdrantTarget(path=str(folder), engine=engine)
    started = time.perf_counter()
    client = target.connect()
    opened = time.perf_counter() - started
    dense_ms, hybrid_ms = [], []
    try:
        for big, small, sparse in _queries(k):
            t = time.perf_counter()
            hits = client.query_points(SCHEMA.name, query=big, using="big", limit=10).points
            dense_ms.append((time.perf_counter() - t) * MS_PER_S)
            t = time.perf_counter()
            fused = _hybrid(client, big, small, sparse).points
            hybrid_ms.append((time.perf_counter() - t) * MS_PER_S)
            assert len(hits) == 10 and fused, "queries must find points"
    finally:
        target.release(client)
    return {
        "open_s": round(opened, 2),
        "dense_p50_ms": round(statistics.median(dense_ms), 2),
        "dense_p95_ms": round(float(np.percentile(dense_ms, 95)), 2),
        "hybrid_p50_ms": round(statistics.median(hybrid_ms), 2),
        "hybrid_p95_ms": round(float(np.percentile(hybrid_ms, 95)), 2),
        "queries": k,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="points per engine")
    parser.add_argument("--queries", type=int, default=200, help="queries per engine")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"n": args.n}
    root = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    try:
        for engine in ENGINES:
            folder = root / engine
            seconds, count = ingest(folder, engine, args.n)
            if count != args.n:
                raise SystemExit(f"{engine}: {count} points stored, {args.n} written")
            results[f"{engine}_ingest_s"] = round(seconds, 1)
            results[f"{engine}_ingest_points_per_s"] = round(args.n / seconds, 1)
            print(f"{engine}: ingest {args.n:,} points in {seconds:.1f} s", flush=True)
            results[f"{engine}_query"] = query(folder, engine, args.queries)
            print(f"{engine}: {results[f'{engine}_query']}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    edge, local = results["edge_query"], results["local_query"]
    results["ratio_ingest_edge_vs_local"] = round(
        results["edge_ingest_points_per_s"] / results["local_ingest_points_per_s"], 2
    )
    results["ratio_dense_p50_local_vs_edge"] = round(
        local["dense_p50_ms"] / edge["dense_p50_ms"], 1
    )
    results["ratio_hybrid_p50_local_vs_edge"] = round(
        local["hybrid_p50_ms"] / edge["hybrid_p50_ms"], 1
    )
    for key in ("ratio_ingest_edge_vs_local", "ratio_dense_p50_local_vs_edge"):
        print(f"{key}: {results[key]}")
    print(f"ratio_hybrid_p50_local_vs_edge: {results['ratio_hybrid_p50_local_vs_edge']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
