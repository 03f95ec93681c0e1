"""Dataflow Flex Template entry point: template parameters -> ``qdrant-beam ingest`` flags.

The Flex Template launcher runs ``python $FLEX_TEMPLATE_PYTHON_PY_FILE`` with every template
parameter as ``--name=value`` plus Dataflow's own options (``--runner``, ``--project``,
``--region``, ``--temp_location``, ``--job_name``, ``--template_location`` ...). Template
parameter names are identifiers (``qdrant_url``), but the CLI's flags are written with dashes
(``--qdrant-url``), and argparse accepts a flag only as it is written. This file rewrites them:

* ``--qdrant_url=X`` -> ``--qdrant-url=X`` for every option of ``IngestOptions`` and
  ``ReindexOptions`` (looked up from the option classes themselves, so it cannot drift);
* boolean flags: ``--prefer_grpc=true`` -> ``--prefer-grpc``; ``=false`` drops the flag;
* ``--models_dir=/a,/b`` -> ``--models-dir=/a --models-dir=/b`` (a repeatable flag);
* an empty value (``--collection=``) drops the flag, i.e. the option keeps its default;
* ``--runner`` defaults to ``DataflowRunner`` (the CLI's own default runs in-process);
* ``--sdk_container_image`` defaults to ``$QDRANT_BEAM_WORKER_IMAGE`` (baked in at image build),
  so the workers run this same image (models in ``/models``, no pip installs, no internet);
* API keys named in ``$QDRANT_BEAM_SECRETS`` are read from Secret Manager first
  (``with_secrets.py``): the launcher creates or checks the collection, so it needs the key too.

Beam's own options use underscores already and pass through untouched. Set
``QDRANT_BEAM_COMMAND=reindex`` in a derived image to launch ``qdrant-beam reindex`` instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["main", "translate"]

TRUE = frozenset({"true", "1", "yes", "y", "on"})
FALSE = frozenset({"false", "0", "no", "n", "off"})
WORKER_IMAGE_ENV = "QDRANT_BEAM_WORKER_IMAGE"
COMMAND_ENV = "QDRANT_BEAM_COMMAND"
_IMAGE_FLAGS = ("--sdk_container_image", "--worker_harness_container_image")


class _Flag(NamedTuple):
    flag: str  # as the CLI spells it: --qdrant-url
    boolean: bool  # store_true: takes no value
    repeatable: bool  # action="append"


def _qdrant_flags() -> dict[str, _Flag]:
    """Template parameter name (the option's dest) -> how the CLI spells it."""
    from qdrant_beam.pipelines.options import IngestOptions, ReindexOptions

    parser = argparse.ArgumentParser(add_help=False)
    IngestOptions._add_argparse_args(parser)
    ReindexOptions._add_argparse_args(parser)
    flags: dict[str, _Flag] = {}
    for action in parser._actions:
        long = [s for s in action.option_strings if s.startswith("--")]
        if not long:
            continue
        flags[action.dest] = _Flag(
            flag=long[0],
            boolean=action.nargs == 0,
            repeatable=isinstance(action, argparse._AppendAction),
        )
    return flags


def translate(argv: Sequence[str], flags: dict[str, _Flag] | None = None) -> list[str]:
    """Rewrite launcher arguments into the CLI's; other arguments are kept as they are."""
    flags = _qdrant_flags() if flags is None else flags
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, has_value, value = arg[2:].partition("=")
        spec = flags.get(name.replace("-", "_"))
        if spec is None:
            out.append(arg)
            continue
        if spec.boolean:
            if not has_value or value.strip().lower() in TRUE:
                out.append(spec.flag)
            elif value.strip().lower() not in FALSE:
                raise SystemExit(f"--{name}: expected true or false, got {value!r}")
            continue
        if not has_value:  # "--name value"
            if i >= len(args):
                raise SystemExit(f"--{name}: missing value")
            value = args[i]
            i += 1
        values = [v.strip() for v in value.split(",")] if spec.repeatable else [value]
        out.extend(f"{spec.flag}={v}" for v in values if v.strip())
    return out


def _with_runner(args: list[str]) -> list[str]:
    """The CLI defaults to FnApiRunner (in-process); a template always means Dataflow."""
    if any(a == "--runner" or a.startswith("--runner=") for a in args):
        return args
    return [*args, "--runner=DataflowRunner"]


def _with_worker_image(args: list[str]) -> list[str]:
    image = os.environ.get(WORKER_IMAGE_ENV, "").strip()
    if not image or any(a.split("=", 1)[0] in _IMAGE_FLAGS for a in args):
        return args
    return [*args, f"--sdk_container_image={image}"]


def _load_secrets() -> None:
    """API keys from Secret Manager, if the image names them (see with_secrets.py)."""
    if os.environ.get("QDRANT_BEAM_SECRETS", "").strip():
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from with_secrets import load_secrets

        logging.info("secrets set: %s", ", ".join(load_secrets()) or "none")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO)
    _load_secrets()
    args = translate(sys.argv[1:] if argv is None else argv)
    args = _with_worker_image(_with_runner(args))
    command = os.environ.get(COMMAND_ENV, "ingest")
    logging.info("qdrant-beam %s %s", command, " ".join(args))
    from qdrant_beam.pipelines.cli import main as cli_main

    return int(cli_main([command, *args]) or 0)


if __name__ == "__main__":
    sys.exit(main())
