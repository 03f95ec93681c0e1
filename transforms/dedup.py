"""How ``ResolveInference`` batches: the dedup strategy.

``BatchDedup`` (the default) batches elements as they come, bounded by count and bytes;
identical inputs are computed once per batch (and once per worker with the LRU cache).
``GlobalDedup`` first groups elements whose inputs are identical (one shuffle, keyed by the
dedup keys of all of an element's inputs), so a record repeated anywhere in the input reaches
one worker, in one batch, and is computed once. It pays off when model calls cost more than
a shuffle: remote providers, heavily duplicated corpora. Records that share only some of
their inputs are deduplicated per batch and per worker, as in batch mode.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import apache_beam as beam
from apache_beam.pvalue import PCollection

from qdrant_beam.io.errors import QdrantBeamError
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.prepare import Preparation
from qdrant_beam.transforms.requests import RequestParser

__all__ = ["BatchDedup", "Batching", "GlobalDedup"]


class Batching(Protocol):
    def batches(
        self, pcoll: PCollection, prepare: Preparation, size: int, max_bytes: int
    ) -> PCollection:
        """``pcoll`` as lists of elements for the inference DoFn."""


def _size_fn(prepare: Preparation, size: int, max_bytes: int) -> Any:
    per_byte = size / max_bytes
    return lambda element: max(1, math.ceil(prepare.weight(element) * per_byte))


class BatchDedup:
    """Batches of ``size`` elements at most, and about ``max_bytes`` of inputs."""

    def batches(
        self, pcoll: PCollection, prepare: Preparation, size: int, max_bytes: int
    ) -> PCollection:
        return pcoll | "Batch" >> beam.BatchElements(
            min_batch_size=size,
            max_batch_size=size,
            element_size_fn=_size_fn(prepare, size, max_bytes),
        )


class GlobalDedup:
    """Elements with identical inputs grouped on one worker before they are batched."""

    def __init__(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    def batches(
        self, pcoll: PCollection, prepare: Preparation, size: int, max_bytes: int
    ) -> PCollection:
        weight = _size_fn(prepare, size, max_bytes)
        return (
            pcoll
            | "KeyByInputs" >> beam.ParDo(_KeyByInputs(prepare, self._catalog))
            | "GroupByInputs" >> beam.GroupByKey()
            | "Groups" >> beam.FlatMap(_chunks, size)
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=size,
                max_batch_size=size,
                element_size_fn=lambda group: sum(weight(e) for e in group),
            )
            | "Flatten" >> beam.Map(lambda groups: [e for group in groups for e in group])
        )


def _chunks(keyed: tuple[str, Iterable[Any]], size: int) -> Iterator[list[Any]]:
    """A group as lists of at most ``size``: a very common input does not make one batch of
    the whole input; it costs one model input per chunk (none with the cache)."""
    chunk: list[Any] = []
    for element in keyed[1]:
        chunk.append(element)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _KeyByInputs(beam.DoFn):
    """element -> (hash of its inputs' dedup keys, element); "" when it cannot be mapped (the
    inference step maps it again and dead-letters it)."""

    def __init__(self, prepare: Preparation, catalog: ModelCatalog) -> None:
        self._prepare = prepare
        self._catalog = catalog

    def setup(self) -> None:
        self._prepare.setup()
        self._parser = RequestParser(self._catalog)

    def process(self, element: Any) -> Iterator[tuple[str, Any]]:
        request = self._parser.request
        try:
            keys = [
                request(kind, value, model, options).key
                for _, kind, value, model, options in self._prepare.inputs(element)
            ]
        except QdrantBeamError:
            yield "", element
            return
        yield hashlib.sha256(repr(sorted(keys)).encode("utf-8")).hexdigest(), element
