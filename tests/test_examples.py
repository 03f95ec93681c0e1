"""The shipped example specs validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from qdrant_beam.pipelines.cli import main
from qdrant_beam.transforms import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_specs_validate(path: Path) -> None:
    spec = load_spec(path)
    assert spec.vectors


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
