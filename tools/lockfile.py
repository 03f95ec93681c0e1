"""Read pins out of ``uv.lock``: the one file that fixes every version this project installs.

Usage::

    python tools/lockfile.py version apache-beam     # 2.78.0
    python tools/lockfile.py requirement uv          # uv==0.13.10 --hash=sha256:... (for pip)

``version`` is how the Dataflow image and the Flink recipe get their Beam version, and
``requirement`` is how ``make`` bootstraps the locked uv with ``pip --require-hashes`` before
uv itself installs the rest. Standard library only (``tomllib``: Python 3.11 or later), since
it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["LockError", "locked_packages", "requirement", "version"]

DEFAULT_LOCK = Path(__file__).resolve().parent.parent / "uv.lock"


class LockError(Exception):
    """The lock does not pin the package the way the caller needs."""


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def locked_packages(lock: Path, name: str) -> list[dict[str, Any]]:
    """Every entry of ``name`` in the lock (more than one when the resolution forks)."""
    with lock.open("rb") as handle:
        data = tomllib.load(handle)
    wanted = _normalise(name)
    return [p for p in data.get("package", []) if _normalise(p["name"]) == wanted]


def _one(lock: Path, name: str) -> dict[str, Any]:
    entries = locked_packages(lock, name)
    if not entries:
        raise LockError(f"{name} is not in {lock}")
    if len(entries) > 1:
        versions = ", ".join(str(e["version"]) for e in entries)
        raise LockError(
            f"{lock} pins {name} at several versions ({versions}), one per Python range; "
            f"the images need one version for every supported Python"
        )
    return entries[0]


def version(lock: Path, name: str) -> str:
    """The one version the lock pins ``name`` at."""
    return str(_one(lock, name)["version"])


def requirement(lock: Path, name: str) -> str:
    """A pip requirement line for ``name`` with the hash of every file the lock allows."""
    entry = _one(lock, name)
    files = [*entry.get("wheels", []), *([entry["sdist"]] if "sdist" in entry else [])]
    hashes = sorted({f["hash"] for f in files if "hash" in f})
    if not hashes:
        raise LockError(f"{lock} has no file hashes for {name}")
    lines = [f"{entry['name']}=={entry['version']}", *(f"--hash={h}" for h in hashes)]
    return " \\\n    ".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("version", "requirement"))
    parser.add_argument("package")
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="default: uv.lock")
    args = parser.parse_args(argv)
    try:
        print(
            version(args.lock, args.package)
            if args.what == "version"
            else requirement(args.lock, args.package)
        )
    except (OSError, LockError, tomllib.TOMLDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
