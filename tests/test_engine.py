"""The inference engine: dedup, MRL, every vector kind, cache, truncation, bad inputs."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TEXT_DIM, resolve_points
from fastembed import LateInteractionTextEmbedding, TextEmbedding
from model_factory import (
    COLBERT_MODEL_NAME,
    IMAGE_MODEL_NAME,
    SPLADE_MODEL_NAME,
    TINY_TEXT_MODEL_NAME,
)
from PIL import Image
from qdrant_client import models

from qdrant_beam.io.errors import ModelNotFound
from qdrant_beam.transforms.backends import local as local_backend
from qdrant_beam.transforms.backends.local import padded_batches
from qdrant_beam.transforms.catalog import ModelCatalog
from qdrant_beam.transforms.engine import InferenceEngine
from qdrant_beam.transforms.metrics import EngineMetrics
from qdrant_beam.transforms.requests import mrl_truncate
from qdrant_beam.transforms.store import ModelStore

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "vector search with payload filters",
    "coffee in the morning and music at night",
]


class Counters(EngineMetrics):
    """Records what the engine reports, instead of Beam's per-step metrics."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def inc(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def observe(self, name: str, value: int) -> None:
        pass

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


@pytest.fixture
def counts() -> Counters:
    return Counters()


@pytest.fixture
def engine(models_map: dict[str, Any], counts: Counters) -> InferenceEngine:
    store = ModelStore(ModelCatalog.of(models_map))
    return InferenceEngine(store, embed_batch_size=4, metrics=counts)


def doc(text: str, model: str = TINY_TEXT_MODEL_NAME, **options: Any) -> models.Document:
    return models.Document(text=text, model=model, options=options or None)


def point(pid: int, **vectors: Any) -> models.PointStruct:
    return models.PointStruct(id=pid, vector=vectors, payload={"n": pid})


def test_duplicates_cost_one_model_input(engine: InferenceEngine, counts: Counters) -> None:
    points = [point(i, dense=doc(TEXTS[i % 3]), again=doc(TEXTS[i % 3])) for i in range(12)]
    done, failed = resolve_points(engine, points)
    assert not failed and len(done) == 12
    assert counts["inference_objects"] == 24
    assert counts["unique_inputs"] == 3
    assert counts["model_inputs"] == 3
    assert counts["model_calls"] == 1
    assert done[0].vector["dense"] == done[3].vector["again"]


def test_whitespace_and_normal_form_variants_share_a_key(
    engine: InferenceEngine, counts: Counters
) -> None:
    points = [point(0, v=doc("café")), point(1, v=doc("  cafe\u0301 "))]
    done, _ = resolve_points(engine, points)
    assert counts["model_inputs"] == 1
    assert done[0].vector["v"] == done[1].vector["v"]


def test_vectors_match_fastembed_directly(
    engine: InferenceEngine, model_dirs: dict[str, Path]
) -> None:
    done, _ = resolve_points(engine, [point(i, v=doc(t)) for i, t in enumerate(TEXTS)])
    direct = TextEmbedding(
        TINY_TEXT_MODEL_NAME, specific_model_path=str(model_dirs["text"]), local_files_only=True
    )
    for got, want in zip(done, direct.embed(TEXTS), strict=True):
        np.testing.assert_allclose(got.vector["v"], want, atol=1e-6)


def test_mrl_sizes_come_from_one_call_and_are_truncated_and_renormalised(
    engine: InferenceEngine, counts: Counters
) -> None:
    text = TEXTS[0]
    p = point(0, full=doc(text), m8=doc(text, mrl=8), m4=doc(text, mrl=4))
    (done,), _ = resolve_points(engine, [p])
    assert counts["model_inputs"] == 1 and counts["model_calls"] == 1
    full = np.asarray(done.vector["full"])
    assert full.shape == (TEXT_DIM,)
    for name, k in (("m8", 8), ("m4", 4)):
        small = np.asarray(done.vector[name])
        assert small.shape == (k,)
        assert np.linalg.norm(small) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(small, full[:k] / np.linalg.norm(full[:k]), atol=1e-6)


def test_mrl_truncate_handles_zero_vectors() -> None:
    assert mrl_truncate(np.zeros(8), 4).tolist() == [0.0] * 4


def test_every_vector_kind_has_qdrant_shape(engine: InferenceEngine, tmp_path: Path) -> None:
    image_path = tmp_path / "red.png"
    Image.new("RGB", (64, 48), "red").save(image_path)
    p = point(
        7,
        dense=doc(TEXTS[1]),
        bm25=doc(TEXTS[1], model="qdrant/bm25"),
        splade=doc(TEXTS[1], model=SPLADE_MODEL_NAME),
        colbert=doc(TEXTS[1], model=COLBERT_MODEL_NAME),
        image=models.Image(image=str(image_path), model=IMAGE_MODEL_NAME),
    )
    (done,), failed = resolve_points(engine, [p])
    assert not failed
    vectors = done.vector
    assert len(vectors["dense"]) == TEXT_DIM and isinstance(vectors["dense"][0], float)
    for sparse in ("bm25", "splade"):
        assert isinstance(vectors[sparse], models.SparseVector)
        assert len(vectors[sparse].indices) == len(vectors[sparse].values) > 0
        assert len(set(vectors[sparse].indices)) == len(vectors[sparse].indices)
    colbert = vectors["colbert"]
    assert isinstance(colbert, list) and len(colbert) > 1 and len(colbert[0]) == 128
    assert len(vectors["image"]) == 512
    assert done.payload == {"n": 7} and done.id == 7
    # The result is a valid qdrant-client point, shaped as the client shapes them.
    models.PointStruct.model_validate(done.model_dump())


def test_unnamed_vector_and_inference_object(engine: InferenceEngine, counts: Counters) -> None:
    plain = models.PointStruct(id=1, vector=doc(TEXTS[0]))
    custom = models.PointStruct(
        id=2, vector={"v": models.InferenceObject(object=TEXTS[0], model=TINY_TEXT_MODEL_NAME)}
    )
    done, failed = resolve_points(engine, [plain, custom])
    assert not failed
    assert done[0].vector == done[1].vector["v"]
    assert counts["model_inputs"] == 1


def test_plain_vectors_pass_through_untouched(engine: InferenceEngine) -> None:
    p = point(3, given=[0.1, 0.2], inferred=doc(TEXTS[2]))
    (done,), _ = resolve_points(engine, [p])
    assert done.vector["given"] == [0.1, 0.2]
    assert len(done.vector["inferred"]) == TEXT_DIM


def test_query_and_passage_embeddings_differ_where_the_model_differs(
    engine: InferenceEngine, counts: Counters, model_dirs: dict[str, Path]
) -> None:
    p = point(
        1,
        passage=doc(TEXTS[0], model=COLBERT_MODEL_NAME),
        query=doc(TEXTS[0], model=COLBERT_MODEL_NAME, input_type="query"),
    )
    (done,), _ = resolve_points(engine, [p])
    assert counts["model_calls"] == 2  # query and passage are different calls
    direct = LateInteractionTextEmbedding(
        COLBERT_MODEL_NAME, specific_model_path=str(model_dirs["colbert"]), local_files_only=True
    )
    np.testing.assert_allclose(
        done.vector["query"], next(direct.query_embed([TEXTS[0]])), atol=1e-6
    )
    np.testing.assert_allclose(done.vector["passage"], next(direct.embed([TEXTS[0]])), atol=1e-6)


def test_long_text_is_truncated_and_counted_not_failed(
    engine: InferenceEngine, counts: Counters
) -> None:
    long_text = " ".join(["vector"] * 500)  # the tiny model's context is 32 tokens
    done, failed = resolve_points(engine, [point(0, v=doc(long_text)), point(1, v=doc(TEXTS[0]))])
    assert not failed and len(done) == 2
    assert counts["truncated_inputs"] == 1


def test_cache_answers_repeats_across_batches(models_map: dict[str, Any], counts: Counters) -> None:
    engine = InferenceEngine(ModelStore(ModelCatalog.of(models_map), cache_size=2), metrics=counts)
    first, _ = resolve_points(engine, [point(0, v=doc(TEXTS[0]))])
    second, _ = resolve_points(engine, [point(1, v=doc(TEXTS[0])), point(2, v=doc(TEXTS[1]))])
    assert counts["cache_hits"] == 1
    assert counts["model_inputs"] == 2
    assert first[0].vector == second[0].vector
    resolve_points(engine, [point(3, v=doc(TEXTS[2]))])  # evicts TEXTS[0] (LRU, 2 entries)
    before = counts["cache_hits"]
    resolve_points(engine, [point(4, v=doc(TEXTS[0]))])
    assert counts["cache_hits"] == before


def test_a_key_landed_between_cache_check_and_claim_is_not_computed_again(
    models_map: dict[str, Any],
) -> None:
    """Two batches on two threads: B misses the cache, then A computes and lands the same
    texts before B claims them. B must take A's vectors, not send the inputs again."""
    store = ModelStore(ModelCatalog.of(models_map), cache_size=100)
    assert store.cache is not None
    a_counts, b_counts = Counters(), Counters()
    a = InferenceEngine(store, metrics=a_counts)
    b = InferenceEngine(store, metrics=b_counts)
    batch = [point(i, dense=doc(text)) for i, text in enumerate(TEXTS)]
    real_get_many = store.cache.get_many
    first_call = [True]

    def get_many_then_let_a_finish(keys: list[Any]) -> dict[Any, Any]:
        found = real_get_many(keys)
        if first_call[0]:  # B's first look: a miss; now A runs to the end
            first_call[0] = False
            resolve_points(a, batch)
        return found

    store.cache.get_many = get_many_then_let_a_finish  # type: ignore[method-assign]
    resolved, failed = resolve_points(b, batch)
    assert not failed
    assert a_counts["model_inputs"] == len(TEXTS)
    assert b_counts["model_inputs"] == 0 and b_counts["model_calls"] == 0
    expected = {p.id: p.vector["dense"] for p in resolve_points(a, batch)[0]}
    assert {p.id: p.vector["dense"] for p in resolved} == expected


def test_bad_inputs_go_to_dead_letters_and_the_batch_lands(
    engine: InferenceEngine, counts: Counters
) -> None:
    good = [point(i, v=doc(t)) for i, t in enumerate(TEXTS)]
    bad = [
        point(10, v=doc("   ")),
        point(11, v=doc("fine"), w=doc("x", model="no/such-model")),
        point(12, v=doc("fine", mrl=0)),
        point(13, v=doc("fine", unknown_option=1)),
        point(14, v=models.Image(image=b"not an image", model=IMAGE_MODEL_NAME)),
        point(15, v=models.Document.model_construct(text=42, model=TINY_TEXT_MODEL_NAME)),
    ]
    done, failed = resolve_points(engine, good[:2] + bad + good[2:])
    assert sorted(p.id for p in done) == [0, 1, 2]
    reasons = {f.record.id: (f.stage, f.error_type, f.message) for f in failed}
    assert sorted(reasons) == [10, 11, 12, 13, 14, 15]
    assert reasons[10][1:] == ("InvalidRecord", "document text is empty or whitespace")
    assert "unknown model 'no/such-model'" in reasons[11][2]
    assert "mrl must be a positive integer" in reasons[12][2]
    assert "option 'unknown_option' is not understood" in reasons[13][2]
    assert reasons[14][1] == "InvalidImage" and "cannot identify image" in reasons[14][2]
    assert "must be a string" in reasons[15][2]
    assert all(stage == "inference" for stage, _, _ in reasons.values())
    assert counts["dead_letters"] == 6 and counts["points_resolved"] == 3


def test_missing_model_fails_fast_and_names_the_folders(tmp_path: Path) -> None:
    catalog = ModelCatalog.of(
        {"sentence-transformers/all-MiniLM-L6-v2": str(tmp_path / "nowhere")},
        [str(tmp_path / "search")],
    )
    engine = InferenceEngine(ModelStore(catalog))
    started = time.monotonic()
    with pytest.raises(ModelNotFound) as err:
        resolve_points(
            engine, [point(0, v=doc("x", model="sentence-transformers/all-MiniLM-L6-v2"))]
        )
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "'sentence-transformers/all-MiniLM-L6-v2'" in message
    assert str(tmp_path / "nowhere") in message
    assert str(tmp_path / "search" / "sentence-transformers--all-MiniLM-L6-v2") in message
    assert "model_optimized.onnx" not in message and "model.onnx" in message


def test_models_load_once_per_store(models_map: dict[str, Any]) -> None:
    store = ModelStore(ModelCatalog.of(models_map))
    a, b = InferenceEngine(store), InferenceEngine(store)
    resolve_points(a, [point(0, v=doc(TEXTS[0]))])
    resolve_points(b, [point(1, v=doc(TEXTS[1]))])
    assert len(store._runners) == 1


def test_padded_batches_bound_inputs_times_length_squared() -> None:
    lengths = sorted([3] * 100 + [50] * 40 + [200] * 20 + [512] * 9)
    batches = padded_batches(lengths, 64, len(lengths))
    assert batches[0] == (0, 64)  # short inputs: the full batch size
    assert [s for s, _ in batches[1:]] == [e for _, e in batches[:-1]]  # contiguous
    assert batches[-1][1] == len(lengths)
    for start, end in batches:
        budget = 64 * local_backend._BUDGET_TOKENS**2
        assert (end - start) * lengths[end - 1] ** 2 <= budget or end - start == 1
    assert padded_batches(None, 4, 10) == [(0, 4), (4, 8), (8, 10)]


def test_long_inputs_go_in_smaller_padded_batches(
    models_map: dict[str, Any], model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_backend, "_BUDGET_TOKENS", 6)  # the tiny model reads 32 tokens
    store = ModelStore(ModelCatalog.of(models_map))
    engine = InferenceEngine(store, embed_batch_size=8)
    texts = [" ".join(["token"] * n) + f" {i}" for i, n in enumerate([1, 2, 3, 10, 20, 30] * 3)]
    points = [point(i, v=doc(t)) for i, t in enumerate(texts)]
    request = store.parser(points[0].vector["v"])
    embedder = store.runner(request).embedder  # type: ignore[attr-defined]
    sizes: list[int] = []
    real_embed = embedder._model.embed

    def spy(batch: list[str], batch_size: int) -> Any:
        sizes.append(len(batch))
        return real_embed(batch, batch_size=batch_size)

    monkeypatch.setattr(embedder._model, "embed", spy)
    done, failed = resolve_points(engine, points)
    assert not failed and sum(sizes) == len(texts) and len(sizes) > 3
    assert sizes[0] > sizes[-1]  # the longest inputs ride in the smallest batches
    direct = TextEmbedding(
        TINY_TEXT_MODEL_NAME, specific_model_path=str(model_dirs["text"]), local_files_only=True
    )
    for got, want in zip(done, direct.embed(texts), strict=True):
        np.testing.assert_allclose(got.vector["v"], want, atol=1e-5)
