"""Inference benchmarks: EmbedPoints against raw fastembed and qdrant-client's local inference.

Every ratio is measured side by side in one run (the machines are noisy), on FnApiRunner, with
a real all-MiniLM-L6-v2 loaded offline. The MRL, BM25 and qdrant-client ratios alternate the two
contenders ``--repeat`` times and compare their best times. Run: ``make bench`` (or
``python bench/bench_inference.py --model-dir models/all-MiniLM-L6-v2``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

sys.path.insert(0, str(Path(__file__).parent))
from corpus import mixed_length_texts, texts

from qdrant_beam import EmbedPoints, load_spec
from qdrant_beam.connectors import QdrantTarget, WriteToQdrant
from qdrant_beam.transforms import PointsSpec

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def spec_for(model_dir: Path, vectors: dict[str, dict[str, Any]]) -> PointsSpec:
    return load_spec(
        {
            "collection": "bench",
            "id": "{id}",
            "payload": {"include": ["id"]},
            "vectors": vectors,
            "models": {MODEL: {"path": str(model_dir)}},
        }
    )


def dense(**options: Any) -> dict[str, Any]:
    return {"text": "{text}", "model": MODEL, **({"options": options} if options else {})}


def run_pipeline(
    spec: PointsSpec,
    corpus: list[str],
    *,
    into_local_qdrant: bool = False,
    **kwargs: Any,
) -> tuple[float, dict[str, int]]:
    """Seconds for EmbedPoints over ``corpus`` (records built inside the pipeline), counters.

    With ``into_local_qdrant`` the points are also written by ``WriteToQdrant`` into the
    embedded in-memory Qdrant, to compare with the seeds' path, which embeds and upserts.
    """
    target = QdrantTarget(location=":memory:")
    collection = f"ours_{time.monotonic_ns()}"
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    records = (
        pipeline
        | beam.Create([0])
        | beam.FlatMap(lambda _: ({"id": i, "text": t} for i, t in enumerate(corpus)))
    )
    points, _ = records | EmbedPoints(spec, **kwargs)
    if into_local_qdrant:  # counted in Qdrant afterwards
        _ = points | WriteToQdrant(target, spec=spec, collection=collection)
    else:
        _ = points | beam.combiners.Count.Globally() | beam.Map(_expect(len(corpus)))
    result = pipeline.run()
    result.wait_until_finish()
    elapsed = time.perf_counter() - started
    if into_local_qdrant:
        client = target.connect()
        try:
            if client.count(collection).count != len(corpus):
                raise RuntimeError("pipeline lost points")
        finally:  # the :memory: client lives on in the process: later runs start clean
            client.delete_collection(collection)
            target.release(client)
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter())["counters"]
        if c.key.metric.namespace == "qdrant_beam.inference"
    }
    return elapsed, counters


def _local_client(collection: str) -> Any:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection(
        collection,
        vectors_config={"dense": models.VectorParams(size=384, distance=models.Distance.COSINE)},
    )
    return client


def _expect(n: int) -> Callable[[int], None]:
    def check(count: int) -> None:
        if count != n:
            raise RuntimeError(f"expected {n} points, got {count}")

    return check


def raw_embed(model_dir: Path, corpus: list[str], batch_size: int = 256) -> float:
    """Seconds for fastembed `embed` over ``corpus`` in input order, model load included."""
    from fastembed import TextEmbedding

    started = time.perf_counter()
    model = TextEmbedding(MODEL, specific_model_path=str(model_dir), local_files_only=True)
    for _ in model.embed(corpus, batch_size=batch_size):
        pass
    return time.perf_counter() - started


def qdrant_client_local(model_dir: Path, corpus: list[str], chunk: int = 256) -> float:
    """Seconds for qdrant-client local mode upserting ``models.Document`` points (the seeds)."""
    from qdrant_client import models

    client = _local_client("seeds")
    options = {"specific_model_path": str(model_dir)}
    started = time.perf_counter()
    for start in range(0, len(corpus), chunk):
        client.upsert(
            "seeds",
            points=[
                models.PointStruct(
                    id=start + i,
                    vector={"dense": models.Document(text=t, model=MODEL, options=options)},
                )
                for i, t in enumerate(corpus[start : start + chunk])
            ],
        )
    elapsed = time.perf_counter() - started
    if client.count("seeds").count != len(corpus):
        raise RuntimeError("qdrant-client lost points")
    return elapsed


def doubled(corpus: list[str], seed: int = 3) -> list[str]:
    out = corpus + corpus
    random.Random(seed).shuffle(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models/all-MiniLM-L6-v2"))
    parser.add_argument("--n", type=int, default=2000, help="texts of ~30 words")
    parser.add_argument("--only", nargs="*", default=None, help="run only these sections")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument(
        "--repeat", type=int, default=2, help="alternating runs per contender (mrl, bm25, seeds)"
    )
    args = parser.parse_args(argv)
    if not (args.model_dir / "model.onnx").is_file():
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
        from minilm import assemble_minilm

        assemble_minilm(args.model_dir)
    n = args.n
    corpus = texts(n)
    results: dict[str, Any] = {"n": n, "model_dir": str(args.model_dir)}
    sections = set(args.only or ["baseline", "dedup", "mixed", "mrl", "bm25", "seeds"])
    one = spec_for(args.model_dir, {"dense": dense()})

    def report(name: str, value: Any) -> None:
        results[name] = value
        print(f"{name}: {value}", flush=True)

    def ratio(a: float, b: float) -> float:
        return round(a / b, 3)

    def paired(
        first: Callable[[], tuple[float, Any]], second: Callable[[], tuple[float, Any]]
    ) -> tuple[float, float, Any]:
        """Best time of each of two contenders, run alternately ``--repeat`` times (the
        ratios close to their targets swing by 10-15% between single runs here)."""
        a = b = float("inf")
        extra = None
        for _ in range(args.repeat):
            a = min(a, first()[0])
            t, extra = second()
            b = min(b, t)
        return a, b, extra

    def seconds(fn: Callable[..., float], *fn_args: Any) -> Callable[[], tuple[float, None]]:
        return lambda: (fn(*fn_args), None)

    raw_embed(args.model_dir, corpus[:64])  # warm the OS file cache and onnxruntime once
    if "baseline" in sections:
        raw = raw_embed(args.model_dir, corpus)
        ours, _ = run_pipeline(one, corpus)
        report("raw_docs_per_s", round(n / raw, 1))
        report("embed_points_docs_per_s", round(n / ours, 1))
        report("ratio_embed_points_vs_raw", ratio(raw, ours))
    if "dedup" in sections:
        twice = doubled(corpus)
        raw = raw_embed(args.model_dir, twice)
        ours, counts = run_pipeline(one, twice, cache_size=2 * n)
        glob, gcounts = run_pipeline(one, twice, dedup="global")
        report("dup_model_inputs", counts["model_inputs"])
        report("dup_unique_texts", n)
        report("dup_ratio_cache_vs_raw", ratio(raw, ours))
        report("dup_global_model_inputs", gcounts["model_inputs"])
        report("dup_ratio_global_vs_raw", ratio(raw, glob))
    if "mixed" in sections:
        mixed = mixed_length_texts(n)
        raw = raw_embed(args.model_dir, mixed)
        ours, _ = run_pipeline(one, mixed)
        report("mixed_raw_docs_per_s", round(n / raw, 1))
        report("mixed_embed_points_docs_per_s", round(n / ours, 1))
        report("mixed_ratio_embed_points_vs_raw", ratio(raw, ours))
    if "mrl" in sections:
        three = spec_for(
            args.model_dir, {"d384": dense(), "d128": dense(mrl=128), "d64": dense(mrl=64)}
        )
        single, triple, counts = paired(
            lambda: run_pipeline(one, corpus), lambda: run_pipeline(three, corpus)
        )
        report("mrl_model_inputs", counts["model_inputs"])
        report("mrl_time_ratio_three_sizes_vs_one", ratio(triple, single))
    if "bm25" in sections:
        hybrid = spec_for(
            args.model_dir, {"dense": dense(), "bm25": {"text": "{text}", "model": "qdrant/bm25"}}
        )
        alone, both, _ = paired(
            lambda: run_pipeline(one, corpus), lambda: run_pipeline(hybrid, corpus)
        )
        report("bm25_time_ratio_dense_plus_bm25_vs_dense", ratio(both, alone))
    if "seeds" in sections:
        seeds, ours, _ = paired(
            seconds(qdrant_client_local, args.model_dir, corpus),
            lambda: run_pipeline(one, corpus, into_local_qdrant=True),
        )
        report("seeds_unique_ratio_ours_vs_qdrant_client", ratio(seeds, ours))
        twice = doubled(corpus)
        seeds, ours, _ = paired(
            seconds(qdrant_client_local, args.model_dir, twice),
            lambda: run_pipeline(one, twice, into_local_qdrant=True, cache_size=2 * n),
        )
        report("seeds_dup_ratio_ours_vs_qdrant_client", ratio(seeds, ours))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
