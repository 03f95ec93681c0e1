"""The tiny models of model_factory load and run through fastembed offline.

Besides guarding the factory, these tests pin the fastembed 0.9.1 behaviour the pipeline relies
on: where truncation comes from, which image inputs are accepted, and how a bad model folder
fails.
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastembed import (
    ImageEmbedding,
    LateInteractionTextEmbedding,
    SparseTextEmbedding,
    TextEmbedding,
)
from model_factory import (
    COLBERT_MODEL_NAME,
    COLBERT_QUERY_LENGTH,
    IMAGE_MODEL_NAME,
    SPLADE_MODEL_NAME,
    TINY_TEXT_MODEL_NAME,
    VOCAB,
    make_colbert_model,
    make_image_model,
    make_splade_model,
    make_text_model,
    register_tiny_text_model,
)
from onnxruntime.capi.onnxruntime_pybind11_state import NoSuchFile
from PIL import Image
from tokenizers import Tokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Qdrant stores vectors and payloads for search.",
    "Coffee in the morning, music at night!",
]
LONG_TEXT = "vector search " * 200

TEXT_FILES = {
    "config.json",
    "model.onnx",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
}
IMAGE_FILES = {"model.onnx", "preprocessor_config.json"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _load(cls: type, name: str, path: Path, tmp_path: Path, **kwargs: Any) -> Any:
    """Load from `path` only; cache_dir keeps fastembed from creating its default temp cache."""
    return cls(
        name,
        specific_model_path=str(path),
        local_files_only=True,
        cache_dir=str(tmp_path / "fastembed_cache"),
        **kwargs,
    )


def _assert_pairwise_different(vectors: list[np.ndarray]) -> None:
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            a, b = vectors[i].ravel(), vectors[j].ravel()
            if a.shape == b.shape:
                cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                assert cosine < 0.95, (i, j, cosine)


def _images(tmp_path: Path) -> list[Any]:
    """A file path (str), a Path and an in-memory PIL image, all different pictures."""
    red = tmp_path / "red.png"
    Image.new("RGB", (320, 240), (220, 30, 30)).save(red)
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))
    gradient = tmp_path / "gradient.jpg"
    Image.fromarray(np.stack([ramp, ramp.T, 255 - ramp], axis=-1)).save(gradient)
    checker = ((np.indices((224, 224)) // 28).sum(axis=0) % 2 * 255).astype(np.uint8)
    return [str(red), gradient, Image.fromarray(checker).convert("RGB")]


# --- factory --------------------------------------------------------------------------------

FACTORIES: list[tuple[Callable[..., Path], set[str]]] = [
    (make_text_model, TEXT_FILES),
    (make_colbert_model, TEXT_FILES),
    (make_splade_model, TEXT_FILES),
    (make_image_model, IMAGE_FILES),
]


@pytest.mark.parametrize(("factory", "files"), FACTORIES, ids=[f.__name__ for f, _ in FACTORIES])
def test_factory_is_fast_deterministic_and_writes_expected_files(
    tmp_path: Path, factory: Callable[..., Path], files: set[str]
) -> None:
    start = time.perf_counter()
    first = factory(tmp_path / "a")
    elapsed = time.perf_counter() - start
    second = factory(tmp_path / "b")

    assert first == tmp_path / "a"
    assert elapsed < 1.0
    assert {p.name for p in first.iterdir()} == files
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_tokenizer_covers_english_with_real_tokens(tmp_path: Path) -> None:
    tokenizer = Tokenizer.from_file(str(make_text_model(tmp_path) / "tokenizer.json"))
    for text in [*TEXTS, "Zebras quizzically juxtapose 42 xylophones; naïve café"]:
        encoding = tokenizer.encode(text)
        assert "[UNK]" not in encoding.tokens, encoding.tokens
        assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    # whole words for common text, not a spelling-out letter by letter
    assert tokenizer.encode(TEXTS[0], add_special_tokens=False).tokens == [
        "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", ".",
    ]  # fmt: skip
    assert VOCAB[:3] == ["[PAD]", "[unused0]", "[unused1]"]


# --- dense text -----------------------------------------------------------------------------


def test_text_model_embeds_normalised_distinct_vectors(tmp_path: Path) -> None:
    name = register_tiny_text_model(TINY_TEXT_MODEL_NAME, dim=16)
    model = _load(TextEmbedding, name, make_text_model(tmp_path, dim=16), tmp_path)

    vectors = list(model.embed(TEXTS))

    assert [v.shape for v in vectors] == [(16,)] * 3
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in vectors)
    np.testing.assert_allclose([np.linalg.norm(v) for v in vectors], 1.0, atol=1e-5)
    _assert_pairwise_different(vectors)
    # deterministic across loads, and the same text embeds the same in any batch
    again = _load(TextEmbedding, name, tmp_path, tmp_path)
    np.testing.assert_allclose(next(iter(again.embed([TEXTS[1]]))), vectors[1], atol=1e-6)
    assert model.embedding_size == 16


def test_text_model_other_dim_and_length(tmp_path: Path) -> None:
    name = register_tiny_text_model("test/tiny-text-8", dim=8)
    model = _load(TextEmbedding, name, make_text_model(tmp_path, dim=8, max_length=16), tmp_path)

    vectors = list(model.embed([*TEXTS, LONG_TEXT]))

    assert [v.shape for v in vectors] == [(8,)] * 4
    assert model.token_count(LONG_TEXT) == 16


def test_register_is_idempotent_and_rejects_conflicts() -> None:
    assert register_tiny_text_model(TINY_TEXT_MODEL_NAME, 16) == TINY_TEXT_MODEL_NAME
    assert register_tiny_text_model(TINY_TEXT_MODEL_NAME, 16) == TINY_TEXT_MODEL_NAME
    # fastembed itself refuses a second registration
    with pytest.raises(ValueError, match="already registered"):
        from fastembed.common.model_description import ModelSource, PoolingType

        TextEmbedding.add_custom_model(
            model=TINY_TEXT_MODEL_NAME,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=TINY_TEXT_MODEL_NAME),
            dim=16,
            model_file="model.onnx",
        )
    with pytest.raises(ValueError, match="already registered with dim=16"):
        register_tiny_text_model(TINY_TEXT_MODEL_NAME, 32)
    with pytest.raises(ValueError, match="built-in"):
        register_tiny_text_model("BAAI/bge-small-en-v1.5", 384)


def test_long_text_is_truncated_to_tokenizer_config_limit(tmp_path: Path) -> None:
    """fastembed truncates to tokenizer_config.json's model_max_length, not tokenizer.json's.

    The tiny model has exactly max_length position rows, so an untruncated input would crash.
    """
    name = register_tiny_text_model()
    path = make_text_model(tmp_path, max_length=32)
    model = _load(TextEmbedding, name, path, tmp_path)

    (vector,) = model.embed([LONG_TEXT])
    assert vector.shape == (16,) and np.isfinite(vector).all()
    assert model.token_count(LONG_TEXT) == 32

    config_path = path / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "model_max_length": 8}))
    stricter = _load(TextEmbedding, name, path, tmp_path)
    assert stricter.token_count(LONG_TEXT) == 8  # tokenizer.json still says 32


# --- late interaction -----------------------------------------------------------------------


def test_colbert_model_passage_and_query_embeddings(tmp_path: Path) -> None:
    model = _load(
        LateInteractionTextEmbedding, COLBERT_MODEL_NAME, make_colbert_model(tmp_path), tmp_path
    )

    docs = list(model.embed([*TEXTS, LONG_TEXT]))
    queries = list(model.query_embed(["what is qdrant?", "fox", LONG_TEXT]))

    for matrix in docs + queries:
        assert matrix.ndim == 2 and matrix.shape[1] == 128
        assert matrix.dtype == np.float32 and np.isfinite(matrix).all()
    # documents: one row per non-punctuation token incl. [CLS], [D] marker and [SEP], each
    # L2-normalised by fastembed; truncated to max_length (31 tokens + the marker)
    punctuation = set(string.punctuation)
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    expected = len([t for t in tokenizer.encode(TEXTS[0]).tokens if t not in punctuation]) + 1
    assert docs[0].shape == (expected, 128)
    assert docs[3].shape == (32, 128)
    for matrix in docs:
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    # queries: always padded with [MASK] to 31 tokens + the [Q] marker, and NOT normalised
    assert [q.shape for q in queries] == [(COLBERT_QUERY_LENGTH, 128)] * 3
    _assert_pairwise_different(docs[:3])
    _assert_pairwise_different(queries)


# --- sparse ---------------------------------------------------------------------------------


def test_splade_model_gives_a_handful_of_weights(tmp_path: Path) -> None:
    model = _load(SparseTextEmbedding, SPLADE_MODEL_NAME, make_splade_model(tmp_path), tmp_path)

    embeddings = list(model.embed([*TEXTS, LONG_TEXT]))

    for embedding in embeddings:
        assert 1 <= len(embedding.indices) <= 3 * 32
        assert len(embedding.indices) == len(embedding.values)
        assert len(set(embedding.indices.tolist())) == len(embedding.indices)
        assert embedding.indices.max() < len(VOCAB)
        assert np.isfinite(embedding.values).all() and (embedding.values > 0).all()
    # about three weights per distinct word, none from [CLS]/[SEP]/[PAD]
    assert all(5 <= len(e.indices) <= 40 for e in embeddings[:3])
    assert not {0, 4, 5} & set(np.concatenate([e.indices for e in embeddings]).tolist())
    index_sets = [frozenset(e.indices.tolist()) for e in embeddings[:3]]
    assert len(set(index_sets)) == 3


# --- image ----------------------------------------------------------------------------------


def test_image_model_embeds_paths_and_pil_images(tmp_path: Path) -> None:
    model = _load(ImageEmbedding, IMAGE_MODEL_NAME, make_image_model(tmp_path / "m"), tmp_path)
    images = _images(tmp_path)

    vectors = list(model.embed(images))
    single = list(model.embed(images[2]))  # one bare PIL image, not in a list

    assert [v.shape for v in vectors] == [(512,)] * 3
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in vectors)
    np.testing.assert_allclose([np.linalg.norm(v) for v in vectors], 1.0, atol=1e-5)
    _assert_pairwise_different(vectors)
    np.testing.assert_allclose(single[0], vectors[2], atol=1e-6)
    # the same picture from disk and from memory gives the same vector
    from_pil = next(iter(model.embed([Image.open(images[0])])))
    np.testing.assert_allclose(from_pil, vectors[0], atol=1e-6)


def test_image_model_rejects_raw_bytes(tmp_path: Path) -> None:
    """fastembed 0.9.1 passes anything that isn't a PIL image to Image.open as a path."""
    model = _load(ImageEmbedding, IMAGE_MODEL_NAME, make_image_model(tmp_path / "m"), tmp_path)
    png = Path(_images(tmp_path)[0]).read_bytes()

    with pytest.raises(ValueError, match="null byte"):
        list(model.embed([png]))


# --- failure behaviour ----------------------------------------------------------------------

LOADERS: list[tuple[type, str, Callable[..., Path]]] = [
    (TextEmbedding, TINY_TEXT_MODEL_NAME, make_text_model),
    (LateInteractionTextEmbedding, COLBERT_MODEL_NAME, make_colbert_model),
    (SparseTextEmbedding, SPLADE_MODEL_NAME, make_splade_model),
    (ImageEmbedding, IMAGE_MODEL_NAME, make_image_model),
]


@pytest.mark.parametrize(
    ("cls", "name", "factory"), LOADERS, ids=lambda x: getattr(x, "__name__", x)
)
@pytest.mark.parametrize("missing", ["folder", "model.onnx"])
def test_missing_model_fails_fast_with_onnxruntime_error(
    tmp_path: Path, cls: type, name: str, factory: Callable[..., Path], missing: str
) -> None:
    """specific_model_path is returned unchecked, so onnxruntime is the first to notice."""
    register_tiny_text_model()
    if missing == "folder":
        path = tmp_path / "does-not-exist"
    else:
        path = factory(tmp_path / "model")
        (path / "model.onnx").unlink()

    start = time.perf_counter()
    with pytest.raises(NoSuchFile, match=r"NO_SUCHFILE .*model\.onnx failed\. File doesn't exist"):
        _load(cls, name, path, tmp_path)
    assert time.perf_counter() - start < 1.0

    # with lazy_load the constructor succeeds and the first embed raises the same error
    lazy = _load(cls, name, path, tmp_path, lazy_load=True)
    sample: list[Any] = _images(tmp_path)[:1] if cls is ImageEmbedding else ["text"]
    with pytest.raises(NoSuchFile):
        list(lazy.embed(sample))


@pytest.mark.parametrize(
    ("factory", "cls", "name", "removed", "message"),
    [
        (make_text_model, TextEmbedding, TINY_TEXT_MODEL_NAME, "tokenizer.json", "tokenizer.json"),
        (
            make_text_model,
            TextEmbedding,
            TINY_TEXT_MODEL_NAME,
            "tokenizer_config.json",
            "tokenizer_config.json",
        ),
        (make_image_model, ImageEmbedding, IMAGE_MODEL_NAME, "preprocessor_config.json", "preproc"),
    ],
)
def test_missing_side_file_is_a_value_error(
    tmp_path: Path,
    factory: Callable[..., Path],
    cls: type,
    name: str,
    removed: str,
    message: str,
) -> None:
    register_tiny_text_model()
    path = factory(tmp_path / "model")
    (path / removed).unlink()

    with pytest.raises(ValueError, match=f"Could not find {message}"):
        _load(cls, name, path, tmp_path)
