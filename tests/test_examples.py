"""The shipped example specs validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qdrant_beam.pipelines.cli import main
from qdrant_beam.transforms import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPECS = sorted(EXAMPLES.glob("*.yaml"))


def test_the_example_specs_are_found() -> None:
    # with no files, the parametrized test below would be skipped, not failed
    assert "articles.yaml" in [p.name for p in SPECS], EXAMPLES


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_specs_validate(path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = load_spec(path)
    assert spec.collection == raw["collection"]
    assert list(spec.vectors) == list(raw["vectors"])  # every vector of the file, in order


def test_cli_validate_lists_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES / "articles.yaml")]) == 0
    out = capsys.readouterr().out
    assert "dense_64: dense 64 from sentence-transformers/all-MiniLM-L6-v2" in out
    assert "bm25: sparse from Qdrant/bm25" in out


def test_cli_reports_spec_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("collection: c\nid: '{id}'\nvectors: {v: {text: '{t}', model: nope/x}}\n")
    assert main(["validate", str(bad)]) == 2
    assert "vectors.v: unknown model 'nope/x'" in capsys.readouterr().err
