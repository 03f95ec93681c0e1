"""Chunking long texts: what splitting costs, what chunked ingest keeps, and flat memory.

The corpus is real English from WordNet (``wordnet_corpus.py``): documents of 300 to 1,200
words made of article-length paragraphs (a synset's gloss and those of related synsets),
separated by blank lines. The model is the real all-MiniLM-L6-v2 (window 256 tokens).

* ``split``: ``Chunker.split`` over the corpus (254 tokens, overlap 32), against embedding
  the resulting chunks with fastembed directly; the share splitting costs.
* ``ingest``: ``EmbedPoints`` on the same documents, the text truncated at the window (no
  chunking) and chunked into a multivector; model tokens per second of each, the
  tokens counted with the model's tokenizer (truncated at 254 without chunking; every
  chunk's tokens with). Alternating runs; the best of each.
* ``memory``: peak RSS of ``qdrant-beam ingest`` of chunk points into an embedded store, in
  a fresh process each: documents of 1 MB against documents of 2 KB, the same total size.

Run: ``python bench/bench_chunking.py --json bench/results/chunking.json`` (about 8 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from wordnet_corpus import load_records, to_articles  # noqa: E402

from qdrant_beam import EmbedPoints, load_spec  # noqa: E402
from qdrant_beam.transforms.backends.local import TokenMeter  # noqa: E402
from qdrant_beam.transforms.chunking import Chunker  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS, OVERLAP = 254, 32


def documents(n: int, words: tuple[int, int], seed: int = 7) -> list[str]:
    """``n`` documents of ``words`` words, of blank-line-separated WordNet paragraphs."""
    everything = load_records()
    records = [dict(r) for r in random.Random(seed).sample(everything, n * 20)]
    to_articles(records, everything)
    paragraphs = iter(r["body"] for r in records)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target = rng.randint(*words)
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < target:
            parts.append(next(paragraphs))
        out.append("\n\n".join(parts))
    return out


def split_cost(texts: list[str], model_dir: Path) -> dict[str, float]:
    from fastembed import TextEmbedding

    meter = TokenMeter(model_dir)
    chunker = Chunker(MAX_TOKENS, overlap=OVERLAP, tokenizer=meter.tokenizer)
    started = time.process_time()
    chunks = [c.text for text in texts for c in chunker.split(text)]
    split_s = time.process_time() - started
    model = TextEmbedding(MODEL, specific_model_path=str(model_dir), local_files_only=True)
    started = time.perf_counter()
    list(model.embed(chunks, batch_size=32))
    embed_s = time.perf_counter() - started
    return {
        "documents": len(texts),
        "chunks": len(chunks),
        "split_cpu_s": round(split_s, 3),
        "embed_s": round(embed_s, 2),
        "split_share_of_embedding": round(split_s / embed_s, 4),
    }


class _Count(beam.DoFn):
    def process(self, point: Any) -> Any:
        Metrics.counter("bench", "points").inc()
        return iter(())


def _spec(model_dir: Path, chunked: bool) -> Any:
    vector: dict[str, Any] = {"text": "{body}", "model": MODEL}
    if chunked:
        vector["chunking"] = {"max_tokens": MAX_TOKENS, "overlap": OVERLAP}
    return load_spec(
        {
            "collection": "bench",
            "id": "{doc_id}",
            "payload": {"include": ["doc_id"]},
            "vectors": {"dense": vector},
            "models": {MODEL: {"path": str(model_dir)}},
        }
    )


def ingest(texts: list[str], model_dir: Path, chunked: bool) -> float:
    records = [{"doc_id": f"d{i}", "body": text} for i, text in enumerate(texts)]
    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        points, _ = p | beam.Create(records) | EmbedPoints(_spec(model_dir, chunked))
        _ = points | beam.ParDo(_Count())
    return time.perf_counter() - started


def model_tokens(texts: list[str], model_dir: Path) -> tuple[int, int]:
    """Tokens the model sees: truncated at the window, and chunked (each chunk's own)."""
    meter = TokenMeter(model_dir)
    chunker = Chunker(MAX_TOKENS, overlap=OVERLAP, tokenizer=meter.tokenizer)
    whole = sum(min(n, MAX_TOKENS) for n in meter.lengths(texts))
    pieces = [c.text for text in texts for c in chunker.split(text)]
    chunked = sum(meter.lengths(pieces))
    return whole, chunked


def peak_rss(texts: list[str], model_dir: Path, work: Path, name: str) -> float:
    """Peak RSS in MB of ``qdrant-beam ingest`` of chunk points, in its own process."""
    data = work / f"{name}.jsonl"
    with data.open("w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"doc_id": f"{name}-{i}", "body": text}) + "\n")
    spec = work / f"{name}.yaml"
    spec.write_text(
        json.dumps(
            {
                "collection": "docs",
                "id": "{doc_id}",
                "payload": {"include": ["doc_id"]},
                "chunks": {"text": "{body}", "max_tokens": MAX_TOKENS, "overlap": OVERLAP},
                "vectors": {"dense": {"text": "{chunk}", "model": MODEL}},
                "models": {MODEL: {"path": str(model_dir)}},
            }
        ),
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "qdrant_beam",
        "ingest",
        f"--spec={spec}",
        f"--input={data}",
        f"--qdrant-path={work / (name + '-q')}",
        "--progress-interval=0",
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env={**os.environ})
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{name}: ingest failed ({status})")
    return usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "all-MiniLM-L6-v2")
    parser.add_argument("--docs", type=int, default=300, help="documents of 300-1,200 words")
    parser.add_argument("--repeat", type=int, default=2, help="alternating ingest runs")
    parser.add_argument("--memory-mb", type=float, default=2.0, help="total size per corpus")
    parser.add_argument("--only", nargs="*", default=None, help="split, ingest, memory")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    wanted = set(args.only or ("split", "ingest", "memory"))
    results: dict[str, Any] = {}
    texts = documents(args.docs, (300, 1200))
    if "split" in wanted:
        results["split"] = split_cost(texts, args.model_dir)
        print(f"split: {results['split']}", flush=True)
    if "ingest" in wanted:
        whole, chunked = model_tokens(texts, args.model_dir)
        times: dict[str, list[float]] = {"truncated": [], "chunked": []}
        for _ in range(args.repeat):
            times["truncated"].append(ingest(texts, args.model_dir, chunked=False))
            times["chunked"].append(ingest(texts, args.model_dir, chunked=True))
        best = {k: min(v) for k, v in times.items()}
        rates = {"truncated": whole / best["truncated"], "chunked": chunked / best["chunked"]}
        results["ingest"] = {
            "model_tokens_truncated": whole,
            "model_tokens_chunked": chunked,
            "seconds": {k: [round(t, 1) for t in v] for k, v in times.items()},
            "tokens_per_s_truncated": round(rates["truncated"]),
            "tokens_per_s_chunked": round(rates["chunked"]),
            "ratio_chunked_vs_truncated": round(rates["chunked"] / rates["truncated"], 3),
        }
        print(f"ingest: {results['ingest']}", flush=True)
    if "memory" in wanted:
        mb = 1024 * 1024
        total = int(args.memory_mb * mb)
        paragraphs = "\n\n".join(documents(200, (300, 600), seed=11))
        text = (paragraphs * (1 + total // len(paragraphs)))[:total]
        big = [text[i : i + mb] for i in range(0, total, mb)]  # the same text, cut two ways
        small = [text[i : i + 2048] for i in range(0, total, 2048)]
        with tempfile.TemporaryDirectory(prefix="bench-chunking-") as work:
            rss = {
                "docs_1mb": peak_rss(big, args.model_dir, Path(work), "big"),
                "docs_2kb": peak_rss(small, args.model_dir, Path(work), "small"),
            }
        results["memory"] = {
            "documents": {"docs_1mb": len(big), "docs_2kb": len(small)},
            "peak_rss_mb": {k: round(v) for k, v in rss.items()},
            "ratio_1mb_vs_2kb": round(rss["docs_1mb"] / rss["docs_2kb"], 3),
        }
        print(f"memory: {results['memory']}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
