"""What the package's transforms return, and the base class that lets them say so.

Beam reads a ``PTransform.expand`` signature as type hints, and logs a warning for every
annotation that is not a ``PCollection`` (once per application: 17-23 lines a CLI run, for
the named tuples below). The annotations are for readers and type checkers, so the base
class gives Beam none: the transforms' outputs are checked by the DoFns that make them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.pvalue import PCollection, TaggedOutput
from apache_beam.typehints.decorators import get_type_hints
from apache_beam.utils.windowed_value import WindowedValue

__all__ = ["AnnotatedTransform", "InferenceOutputs", "windowed"]


class AnnotatedTransform(beam.PTransform):
    """A ``PTransform`` whose ``expand`` annotations are not Beam type hints."""

    def default_type_hints(self) -> Any:
        # Beam's default merges in the hints read off ``expand``; keep only the class's own
        # (``with_input_types``/``with_output_types`` decorators still apply).
        return get_type_hints(self.__class__)


class InferenceOutputs(NamedTuple):
    """What the inference transforms return; unpacks as ``points, dead_letters``."""

    points: PCollection
    dead_letters: PCollection


def windowed(value: Any, window: Any, timestamp: Any) -> Any:
    """A result in the window of the input it came from: work done on another thread may
    finish in a later call, or in ``finish_bundle``, where Beam needs it windowed explicitly.
    A ``TaggedOutput`` keeps its tag."""
    if isinstance(value, TaggedOutput):
        return TaggedOutput(value.tag, WindowedValue(value.value, timestamp, (window,)))
    return WindowedValue(value, timestamp, (window,))
