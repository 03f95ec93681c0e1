"""The ``qdrant-beam`` command line.

``ingest`` and ``reindex`` take every Beam pipeline option besides their own (they are
``PipelineOptions`` subclasses), so ``--runner DataflowRunner --project ...`` passes through.
Without ``--runner`` they run on ``FnApiRunner``, in this process: Beam's default would first
try to download the Prism runner.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from qdrant_beam.io.errors import QdrantBeamError, SpecError
from qdrant_beam.transforms.spec import PointsSpec, load_spec

__all__ = ["main"]


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(PointsSpec.json_schema(), indent=2, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    for name in spec.vectors:
        info = spec.model_info(name)
        size = spec.vector_size(name)
        dims = f" {size}" if size else ""
        print(f"{name}: {info.vector_kind.value}{dims} from {info.name}")
    return 0


def _pipeline_options(command: str, argv: list[str]) -> PipelineOptions:
    from qdrant_beam.pipelines.options import job_options

    if not any(a == "--runner" or a.startswith("--runner=") for a in argv):
        argv = [*argv, "--runner=FnApiRunner"]
    return job_options(command, argv)


def _job(command: str, argv: list[str]) -> int:
    from qdrant_beam.pipelines.jobs import run_ingest, run_reindex

    options = _pipeline_options(command, argv)
    run = run_ingest if command == "ingest" else run_reindex
    result = run(options, emit=_say)
    print(f"{command} into {result.collection}:")
    for line in result.summary.lines():
        print(f"  {line}")
    return result.exit_code


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _query(args: argparse.Namespace) -> int:
    from qdrant_beam.connectors.target import QdrantTarget
    from qdrant_beam.pipelines.jobs import load_job_spec

    spec = load_job_spec(args.spec)
    if bool(args.qdrant_url) == bool(args.qdrant_path):
        raise SpecError("give exactly one of --qdrant-url or --qdrant-path")
    target = (
        QdrantTarget(url=args.qdrant_url, api_key_env=args.qdrant_api_key_env)
        if args.qdrant_url
        else QdrantTarget(path=args.qdrant_path, engine=args.qdrant_engine)
    )
    with target.named_in_errors():
        hits = _search(target, spec, args)
    if args.json:
        print(json.dumps([{"id": h.id, "score": h.score, "payload": h.payload} for h in hits]))
        return 0
    for rank, hit in enumerate(hits, 1):
        payload = hit.payload or {}
        title = next((str(payload[k]) for k in args.show if k in payload), "")
        if args.group_by_parent:
            title = f"[{payload.get('parent_id')} #{payload.get('chunk_index')}] {title}"
        print(f"{rank:2d}. {hit.score:.4f}  {hit.id}  {title}")
    return 0


def _search(target: Any, spec: PointsSpec, args: argparse.Namespace) -> list[Any]:
    from qdrant_beam.pipelines.query import search

    client = target.connect()
    try:
        return search(
            client,
            spec,
            args.text,
            vector=args.vector,
            small=args.small,
            sparse=args.sparse,
            limit=args.limit,
            collection=args.collection,
            group_by_parent=args.group_by_parent,
        )
    finally:
        target.release(client)


def _upload(args: argparse.Namespace) -> int:
    from qdrant_beam.connectors.target import QdrantTarget
    from qdrant_beam.pipelines.upload import upload

    source = QdrantTarget(path=args.qdrant_path, engine=args.qdrant_engine)
    destination = QdrantTarget(
        url=args.to_url, api_key_env=args.to_api_key_env, prefer_grpc=args.to_grpc
    )
    result = upload(
        source,
        args.collection,
        destination,
        to_collection=args.to_collection,
        batch_size=args.batch_size,
        emit=_say,
    )
    print(
        f"uploaded {result.points:,} points from {args.qdrant_path} ({args.collection}) to "
        f"{destination.describe()} ({result.collection}, {result.status}); "
        f"{result.failed:,} failed"
    )
    return 1 if result.failed else 0


JOB_COMMANDS = ("ingest", "reindex")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in JOB_COMMANDS:
        if any(a in ("-h", "--help") for a in args_list[1:]):
            return _job_help(args_list[0])
        try:
            return _job(args_list[0], args_list[1:])
        except QdrantBeamError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return _main(args_list)


def _job_help(command: str) -> int:
    from qdrant_beam.pipelines.options import IngestOptions, ReindexOptions

    parser = argparse.ArgumentParser(
        prog=f"qdrant-beam {command}",
        description="Any Beam pipeline option is accepted too (--runner, --project, ...).",
    )
    IngestOptions._add_argparse_args(parser)
    if command == "reindex":
        ReindexOptions._add_argparse_args(parser)
    parser.print_help()
    return 0


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="qdrant-beam", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="print the spec's JSON Schema")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")
    schema.set_defaults(run=_schema)
    validate = commands.add_parser("validate", help="validate a spec and list its vectors")
    validate.add_argument("spec", help="YAML or JSON spec file")
    validate.set_defaults(run=_validate)
    commands.add_parser("ingest", help="read records, embed them, write points (see --help)")
    commands.add_parser(
        "reindex", help="incremental or rebuild reindex of a collection (see --help)"
    )
    query = commands.add_parser("query", help="search an index built from a spec")
    query.add_argument("--spec", required=True)
    query.add_argument("--vector", required=True, help="the dense or multi-vector to rank by")
    query.add_argument("--text", required=True)
    query.add_argument("--small", help="an MRL-small vector to prefetch with, then rescore")
    query.add_argument("--sparse", help="a sparse vector (e.g. BM25) to fuse with by RRF")
    query.add_argument("--limit", type=int, default=5)
    query.add_argument(
        "--group-by-parent",
        action="store_true",
        help="chunk points: one hit per record (its best chunk)",
    )
    query.add_argument("--collection", help="collection or alias (default: the spec's)")
    query.add_argument("--qdrant-url")
    query.add_argument("--qdrant-path")
    query.add_argument("--qdrant-engine", choices=("auto", "edge", "local"), default="auto")
    query.add_argument("--qdrant-api-key-env", default="QDRANT_API_KEY")
    query.add_argument(
        "--show", nargs="*", default=["title", "name", "text"], help="payload fields to print"
    )
    query.add_argument("--json", action="store_true", help="print hits as JSON")
    query.set_defaults(run=_query)
    up = commands.add_parser(
        "upload", help="copy a collection of an embedded store to a Qdrant server"
    )
    up.add_argument("--qdrant-path", required=True, help="the embedded store's folder")
    up.add_argument("--qdrant-engine", choices=("auto", "edge", "local"), default="auto")
    up.add_argument("--collection", required=True, help="collection (or alias) to copy")
    up.add_argument("--to-url", required=True, help="the server, e.g. https://HOST:6333")
    up.add_argument("--to-collection", help="name on the server (default: the same)")
    up.add_argument("--to-api-key-env", default="QDRANT_API_KEY")
    up.add_argument("--to-grpc", action="store_true", help="upload over gRPC")
    up.add_argument("--batch-size", type=int, default=256, help="points per upsert")
    up.set_defaults(run=_upload)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except QdrantBeamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # the qdrant-beam script (qdrant_beam.console) also tunes start-up
    sys.exit(main())
