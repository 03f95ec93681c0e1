"""Command-line options of the jobs, as Beam ``PipelineOptions`` subclasses.

Because they are ``PipelineOptions``, every Beam option (``--runner``, ``--project``,
``--region``, ``--flink_master``, ``--environment_type`` ...) passes straight through, and a
Dataflow Flex Template can hand its parameters to the launcher unchanged. Beam parses every
``PipelineOptions`` subclass for every pipeline, so nothing here is ``required``: the CLI
checks ``--spec`` and ``--input`` itself.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["INPUT_FORMATS", "IngestOptions", "ReindexOptions"]

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
            "--qdrant-path", default=None, help="folder of an embedded (local mode) Qdrant"
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
            "--dead-letter", default=None, help="write dead letters as JSONL to this path prefix"
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
