"""Deterministic English-like corpora for the benchmarks: no downloads, same texts every run."""

from __future__ import annotations

import random

__all__ = ["mixed_length_texts", "texts"]

_SUBJECTS = [
    "researchers",
    "engineers",
    "the team",
    "our method",
    "the model",
    "this paper",
    "the survey",
    "the pipeline",
    "the city council",
    "the museum",
    "farmers",
    "the hospital",
    "the library",
    "the new policy",
    "the report",
]
_WORDS = [
    "analysis",
    "approach",
    "archive",
    "baseline",
    "batch",
    "benchmark",
    "bridge",
    "budget",
    "cache",
    "climate",
    "coastal",
    "collection",
    "community",
    "compression",
    "corpus",
    "cost",
    "data",
    "dataset",
    "decade",
    "demand",
    "density",
    "design",
    "distance",
    "document",
    "drought",
    "economy",
    "effect",
    "efficiency",
    "energy",
    "estimate",
    "evidence",
    "experiment",
    "field",
    "filter",
    "forest",
    "framework",
    "growth",
    "harvest",
    "history",
    "image",
    "index",
    "infrastructure",
    "input",
    "insight",
    "journal",
    "language",
    "latency",
    "layer",
    "library",
    "market",
    "measure",
    "memory",
    "method",
    "metric",
    "migration",
    "model",
    "network",
    "noise",
    "ocean",
    "output",
    "paper",
    "pattern",
    "payload",
    "performance",
    "policy",
    "population",
    "practice",
    "pressure",
    "program",
    "quality",
    "query",
    "rainfall",
    "range",
    "rate",
    "record",
    "region",
    "relevance",
    "report",
    "research",
    "resource",
    "result",
    "retrieval",
    "river",
    "rule",
    "sample",
    "scale",
    "schedule",
    "science",
    "search",
    "season",
    "sensor",
    "signal",
    "soil",
    "source",
    "speed",
    "storage",
    "strategy",
    "structure",
    "study",
    "survey",
    "system",
    "temperature",
    "term",
    "test",
    "text",
    "theory",
    "throughput",
    "topic",
    "traffic",
    "trend",
    "union",
    "user",
    "value",
    "variance",
    "vector",
    "village",
    "volume",
    "water",
    "weather",
    "window",
    "workload",
]
_VERBS = [
    "improves",
    "reduces",
    "measures",
    "describes",
    "compares",
    "explains",
    "predicts",
    "tracks",
    "supports",
    "doubles",
    "lowers",
    "ranks",
    "stores",
    "indexes",
    "filters",
    "models",
    "reports",
    "studies",
    "extends",
    "reviews",
]
_LINKS = [
    "with",
    "across",
    "for",
    "in",
    "under",
    "over",
    "during",
    "after",
    "before",
    "between",
    "within",
    "along",
]


def _sentence(rng: random.Random, words: int) -> str:
    subject = rng.choice(_SUBJECTS).split()
    body = [rng.choice(_VERBS)]
    while len(subject) + len(body) < words:
        body.append(rng.choice(_WORDS) if rng.random() < 0.8 else rng.choice(_LINKS))
    text = " ".join([*subject, *body])
    return text[0].upper() + text[1:] + "."


def _text(rng: random.Random, words: int) -> str:
    parts, count = [], 0
    while count < words:
        n = min(words - count, rng.randint(8, 16))
        parts.append(_sentence(rng, max(n, 4)))
        count += max(n, 4)
    return " ".join(parts)


def texts(n: int, *, words: int = 30, seed: int = 7) -> list[str]:
    """n distinct texts of about ``words`` words each."""
    rng = random.Random(seed)
    return [f"{_text(rng, words)} ({i})" for i in range(n)]


def mixed_length_texts(n: int, *, seed: int = 11) -> list[str]:
    """Half ~250-token abstracts, half ~15-token titles, shuffled."""
    rng = random.Random(seed)
    long = [f"{_text(rng, 190)} ({i})" for i in range(n // 2)]
    short = [f"{_text(rng, 11)} ({i})" for i in range(n - n // 2)]
    out = long + short
    rng.shuffle(out)
    return out
