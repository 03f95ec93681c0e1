"""The embedded store's folder: one qdrant-edge shard per collection, and the aliases.

::

    DIR/qdrant-beam-edge.json      {"format": "qdrant-beam-edge", "version": 1, "aliases": {...}}
    DIR/collections/<name>/        a qdrant-edge shard (edge_config.json, segments/, wal/)

Edge has no aliases, so they live in the manifest, which is replaced atomically (written
beside it, fsynced, ``os.replace``d): a reader that resolves an alias sees the old or the new
target, never a half-built one. ``kind`` tells a store from a qdrant-client local-mode folder
(``meta.json``, ``collection/``) or a folder of something else.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from qdrant_beam.io.errors import SpecError

__all__ = ["MANIFEST", "FolderKind", "Manifest", "kind"]

MANIFEST = "qdrant-beam-edge.json"
_FORMAT = "qdrant-beam-edge"
_VERSION = 1
#: What qdrant-client's local mode writes in its folder.
_LOCAL_MODE_MARKERS = ("meta.json", "collection")

FolderKind = Literal["new", "edge", "local", "foreign"]


def kind(path: str | os.PathLike[str]) -> FolderKind:
    """What a folder holds: nothing yet, an edge store, a local-mode store, or something else."""
    folder = Path(path)
    if not folder.exists():
        return "new"
    if not folder.is_dir():
        return "foreign"
    if (folder / MANIFEST).is_file():
        return "edge"
    names = {p.name for p in folder.iterdir()}
    if any(marker in names for marker in _LOCAL_MODE_MARKERS):
        return "local"
    return "new" if not names else "foreign"


class Manifest:
    """The store's manifest: its format and the aliases. Not thread-safe by itself."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / MANIFEST

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "collections").mkdir(exist_ok=True)
        if not self.path.exists():
            self._write({"format": _FORMAT, "version": _VERSION, "aliases": {}})

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SpecError(
                f"cannot read the embedded store's manifest {self.path}: {exc}"
            ) from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise SpecError(f"{self.path} is not a qdrant-beam embedded store's manifest")
        if data.get("version") != _VERSION:
            raise SpecError(
                f"{self.path} is version {data.get('version')!r} of the embedded store; this "
                f"qdrant-beam reads version {_VERSION}"
            )
        return data

    def aliases(self) -> dict[str, str]:
        return dict(self.read().get("aliases") or {})

    def set_aliases(self, aliases: dict[str, str]) -> None:
        data = self.read()
        data["aliases"] = dict(sorted(aliases.items()))
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        """Atomically: a crash leaves the old manifest or the new one, never half of one."""
        fd, temp = tempfile.mkstemp(prefix=f".{MANIFEST}.", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
