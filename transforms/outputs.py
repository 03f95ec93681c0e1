"""What the mapping and inference transforms return."""

from __future__ import annotations

from typing import NamedTuple

from apache_beam.pvalue import PCollection

__all__ = ["InferenceOutputs"]


class InferenceOutputs(NamedTuple):
    """What the inference transforms return; unpacks as ``points, dead_letters``."""

    points: PCollection
    dead_letters: PCollection
