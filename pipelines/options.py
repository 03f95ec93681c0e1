"""Command-line options of the jobs, as Beam ``PipelineOptions`` subclasses.

Because they are ``PipelineOptions``, every Beam option (``--runner``, ``--project``,
``--region``, ``--flink_master``, ``--environment_type`` ...) passes straight through, and a
Dataflow Flex Template can hand its parameters to the launcher unchanged. Beam parses every
``PipelineOptions`` subclass for every pipeline, so nothing here is ``required``: the CLI
checks ``--spec`` and ``--input`` itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from apache_beam.options.pipeline_options import (
    PipelineOptions,
    StandardOptions,
    _BeamArgumentParser,
)

from qdrant_beam.io.errors import SpecError
from qdrant_beam.transforms.workers import runner_workers

__all__ = [
    "INPUT_FORMATS",
    "IngestOptions",
    "ReindexOptions",
    "UsageError",
    "job_options",
    "worker_count",
]

INPUT_FORMATS = ("jsonl", "parquet", "csv")


class IngestOptions(PipelineOptions):
    """``qdrant-beam ingest``: read records, embed them, write points."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:  # type: ignore[no-untyped-def]
        group = parser.add_argument_group("qdrant-beam")
        group.add_argument("--spec", default=None, help="YAML or JSON spec file (required)")
        group.add_argument(
            "--input", default=None, help="file pattern: local, gs://, s3://, globs (required)"
        )
        group.add_argument(
            "--format",
            choices=INPUT_FORMATS,
            default=None,
            help="input format; inferred from the file extension when omitted",
        )
        group.add_argument("--qdrant-url", default=None, help="Qdrant server URL")
        group.add_argument(
            "--qdrant-path", default=None, help="folder of an embedded Qdrant (this process)"
        )
        group.add_argument(
            "--qdrant-engine",
            choices=("auto", "edge", "local"),
            default="auto",
            help="engine of --qdrant-path: edge (Qdrant's own, the default for new folders), "
            "local (qdrant-client's local mode; auto picks it for folders it wrote)",
        )
        group.add_argument(
            "--qdrant-api-key-env",
            default="QDRANT_API_KEY",
            help="environment variable the workers read the Qdrant API key from",
        )
        group.add_argument(
            "--prefer-grpc", action="store_true", default=False, help="write over gRPC"
        )
        group.add_argument(
            "--collection", default=None, help="collection name (overrides the spec's)"
        )
        group.add_argument(
            "--dead-letter",
            default=None,
            metavar="FILE",
            help="write dead letters to this one JSONL file, replaced on each run ('.jsonl' is "
            "added to a name without it; a path ending in '/' gets dead-letters.jsonl)",
        )
        group.add_argument(
            "--models-dir",
            action="append",
            default=None,
            help="folder searched for local models (repeatable; also $QDRANT_BEAM_MODELS)",
        )
        group.add_argument(
            "--inference",
            choices=("local", "server"),
            default="local",
            help="'server' leaves inference objects for Qdrant to embed",
        )
        group.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="points per batch (default 256, 1024 when a vector uses a remote provider)",
        )
        group.add_argument(
            "--embed-batch-size", type=int, default=32, help="inputs per model batch"
        )
        group.add_argument(
            "--upsert-batch-size", type=int, default=128, help="points per upsert request"
        )
        group.add_argument(
            "--cache-size", type=int, default=0, help="per-worker LRU vector cache entries"
        )
        group.add_argument(
            "--dedup",
            choices=("batch", "global"),
            default="batch",
            help="'global' embeds each unique input once across workers (one shuffle)",
        )
        group.add_argument(
            "--worker-count",
            type=int,
            default=None,
            help="worker processes writing at once, for the shared windows (default: from "
            "--max_num_workers/--num_workers, --parallelism or --direct_num_workers; on "
            "Dataflow count SDK processes: workers x vCPUs)",
        )
        group.add_argument(
            "--max-total-upserts",
            type=int,
            default=None,
            help="hint: upserts in flight for all workers together (e.g. the server's limit); "
            "each worker keeps to its share",
        )
        group.add_argument(
            "--progress-interval",
            type=float,
            default=10.0,
            help="seconds between progress lines on local runners (0 turns them off)",
        )


class ReindexOptions(PipelineOptions):
    """``qdrant-beam reindex``: the ingest options plus these; skip unchanged, or rebuild."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:  # type: ignore[no-untyped-def]
        group = parser.add_argument_group("reindex")
        group.add_argument(
            "--mode",
            choices=("incremental", "rebuild"),
            default="incremental",
            help="incremental: skip unchanged records; rebuild: new version behind the alias",
        )
        group.add_argument(
            "--delete-missing",
            action="store_true",
            default=False,
            help="incremental: delete points whose source records disappeared",
        )
        group.add_argument(
            "--grace-seconds",
            type=float,
            default=0.0,
            help="rebuild: wait this long after the alias switch before dropping old versions",
        )
        group.add_argument(
            "--keep-versions",
            type=int,
            default=1,
            help="rebuild: old versions to keep besides the live one",
        )


class UsageError(SpecError):
    """A mistake on the command line: an unknown option, a bad value, an unknown runner."""


class _StrictParser(_BeamArgumentParser):  # Beam's parser: some option classes need its API
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def job_options(command: str, argv: Sequence[str]) -> PipelineOptions:
    """``argv`` as the options of ``qdrant-beam <command>``, checked strictly.

    Beam discards options it does not know with a warning, so a typo such as
    ``--dead-leter`` would silently run the job without its dead-letter file; here every
    option must belong to Beam or to the command, and values must parse.

    Raises:
        UsageError: naming the option and the problem (with the closest known option).
    """
    ours: list[type[PipelineOptions]] = [IngestOptions]
    if command == "reindex":
        ours.append(ReindexOptions)
    beams = {
        str(cls): cls
        for cls in PipelineOptions.__subclasses__()
        if not cls.__module__.startswith("qdrant_beam")
    }
    parser = _StrictParser(allow_abbrev=False, add_help=False)
    for cls in [*beams.values(), *ours]:
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(list(argv))
    if unknown:
        first = unknown[0]
        flag = first.split("=", 1)[0]
        if not flag.startswith("-"):
            raise UsageError(f"unexpected argument {first!r}; options take the form --name value")
        close = difflib.get_close_matches(flag, parser._option_string_actions, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"unknown option {flag} for `qdrant-beam {command}`{hint}")
    options = PipelineOptions(list(argv))
    _check_runner(options.view_as(StandardOptions).runner)
    return options


def _check_runner(runner: str | None) -> None:
    if not runner or "." in runner:  # a fully qualified runner class is Beam's to import
        return
    known = {name.lower() for name in StandardOptions.KNOWN_RUNNER_NAMES}
    if runner.lower() not in known and f"{runner.lower()}runner" not in known:
        names = ", ".join(StandardOptions.KNOWN_RUNNER_NAMES)
        raise UsageError(f"--runner {runner!r} is not a Beam runner; use one of {names}")


def worker_count(options: PipelineOptions) -> int:
    """How many worker processes write at once: ``--worker-count``, else what the runner's own
    options say (``runner_workers``). Each worker's windows are one share of the server's."""
    explicit = options.view_as(IngestOptions).worker_count
    if explicit is None:
        return runner_workers(options)
    if explicit < 1:
        raise UsageError(f"--worker-count must be at least 1, got {explicit}")
    return int(explicit)
