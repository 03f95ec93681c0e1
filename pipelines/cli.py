"""The ``qdrant-beam`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from qdrant_beam.transforms.errors import SpecError
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qdrant-beam", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="print the spec's JSON Schema")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")
    schema.set_defaults(run=_schema)
    validate = commands.add_parser("validate", help="validate a spec and list its vectors")
    validate.add_argument("spec", help="YAML or JSON spec file")
    validate.set_defaults(run=_validate)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
