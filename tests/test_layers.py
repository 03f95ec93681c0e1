"""The layers hold: each imports only those below it (docs/architecture.md).

``import-linter`` reads the package from a copy laid out the way the wheel installs it (it
cannot follow setuptools' editable import hook); the contracts are in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold(tmp_path: Path) -> None:
    package = tmp_path / "qdrant_beam"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "qdrant_beam", package, ignore=ignore)
    for layer in ("transforms", "connectors", "pipelines"):
        shutil.copytree(ROOT / layer, package / layer, ignore=ignore)
    lint_imports = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_transforms_import_neither_connectors_nor_pipelines() -> None:
    for path in (ROOT / "transforms").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "qdrant_beam.connectors" not in text, path
        assert "qdrant_beam.pipelines" not in text, path


def test_no_module_of_the_layers_is_over_400_lines() -> None:
    for layer in ("transforms", "connectors", "pipelines", "qdrant_beam"):
        for path in (ROOT / layer).rglob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"
