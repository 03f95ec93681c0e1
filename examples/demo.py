"""The quickstart demo: embed the sample articles and search them, all offline.

Reads ``examples/articles.jsonl``, embeds each record with a real all-MiniLM-L6-v2 (dense and an
MRL-64 vector from the same model call) and ``qdrant/bm25``, writes the points into an embedded
Qdrant folder, then runs three example queries and prints the top hits with their scores.

Run: ``make demo`` (assembles the model first), or
``python examples/demo.py --qdrant-path build/demo-qdrant``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from qdrant_beam.console import configure_logging

HERE = Path(__file__).resolve().parent
QUERIES = [
    "why do coral reefs lose their colour",
    "how does a database find similar vectors",
    "slow cooking with herbs",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default=str(HERE / "articles.yaml"))
    parser.add_argument("--input", default=str(HERE / "articles.jsonl"))
    parser.add_argument("--qdrant-path", default="build/demo-qdrant")
    args = parser.parse_args(argv)
    configure_logging()  # before Beam is imported: no note about BigQuery libraries

    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    from qdrant_beam import EmbedPoints, QdrantTarget, WriteToQdrant, load_spec
    from qdrant_beam.pipelines.query import QueryEmbedder, search

    spec = load_spec(args.spec)
    shutil.rmtree(args.qdrant_path, ignore_errors=True)
    target = QdrantTarget(path=args.qdrant_path)
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    records = (
        pipeline | "Read" >> beam.io.ReadFromText(args.input) | "Parse" >> beam.Map(json.loads)
    )
    points, _ = records | EmbedPoints(spec, cache_size=1_000)
    _ = points | WriteToQdrant(target, spec=spec)
    result = pipeline.run()
    result.wait_until_finish()
    elapsed = time.perf_counter() - started

    def total(name: str, namespace: str) -> int:
        flt = MetricsFilter().with_name(name).with_namespace(namespace)
        return sum(c.committed for c in result.metrics().query(flt)["counters"])

    print(
        f"ingested {total('points_written', 'qdrant_beam.write')} points in {elapsed:.1f} s: "
        f"{total('inference_objects', 'qdrant_beam.inference')} inference objects, "
        f"{total('model_inputs', 'qdrant_beam.inference')} model inputs, "
        f"{total('dead_letters', 'qdrant_beam.map')} dead letters"
    )
    client = target.connect()
    embedder = QueryEmbedder(spec)
    for query in QUERIES:
        print(f"\nquery: {query!r}  (MRL-64 prefetch, rescored on 384-d, fused with BM25 by RRF)")
        hits = search(
            client, spec, query, vector="dense", small="dense_64", sparse="bm25", embedder=embedder
        )
        for hit in hits[:3]:
            payload = hit.payload or {}
            print(f"  {hit.score:.4f}  [{payload.get('category')}] {payload.get('title')}")
    target.release(client)
    return 0


if __name__ == "__main__":
    sys.exit(main())
