"""Parity of our client-side ``qdrant/bm25`` vectors with Qdrant's own BM25.

We compute ``qdrant/bm25`` sparse vectors with fastembed's ``Bm25``, loaded offline from the
stopword folder we ship (``qdrant_beam.transforms/data/stopwords``). Qdrant computes the same
model server-side, and ``qdrant-edge-py`` exposes that implementation in-process as
``qdrant_edge.Bm25``. Both use murmur3 token ids ``abs(int32)``, the same TF saturation
``tf * (k + 1) / (tf + k * (1 - b + b * doc_len / avg_len))`` with k=1.2, b=0.75, avg_len=256,
the NLTK English stopwords and the Snowball English stemmer. Queries get weight 1.0 per unique
token.

The two implementations agree on ordinary text. They differ only where their tokenizers
disagree, and each such case is pinned down below:

* ``_`` is a word character for fastembed (``\\w``) but a separator for Qdrant
  (Rust ``char::is_alphanumeric``).
* fastembed drops tokens longer than 40 characters (``token_max_length``, checked before
  stemming). Qdrant keeps every length unless ``max_token_len`` is set, and it checks that limit
  after stemming.
* ``İ`` (U+0130) lowercases to ``i`` + U+0307. fastembed lowercases before splitting, so the
  combining dot splits the word. Qdrant splits first, so the word stays whole.
* Characters with the Unicode ``Alphabetic`` property that are not letters (``Other_Alphabetic``
  marks and symbols: Indic vowel signs, circled letters ``Ⓐ``) stay inside Qdrant tokens. fastembed
  splits on them. So do code points that this Python's Unicode database does not assign yet.
"""

from __future__ import annotations

import importlib.resources
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import mmh3
import numpy as np
import pytest
from conftest import resolve_points
from fastembed import SparseTextEmbedding
from fastembed.sparse.bm25 import Bm25
from py_rust_stemmers import SnowballStemmer

qdrant_edge = pytest.importorskip("qdrant_edge")

STOPWORDS_DIR = Path(
    str(importlib.resources.files("qdrant_beam.transforms") / "data" / "stopwords")
)
K, B, AVG_LEN = 1.2, 0.75, 256.0
TOL = 1e-5

# Texts on which fastembed and Qdrant must agree exactly (same indices, values within TOL).
AGREEING_TEXTS = {
    "plain": "The quick brown fox jumps over the lazy dog.",
    "punctuation_and_caps": (
        "Hello, WORLD!!! Is this (really) the BEST way -- to search? Yes; it's QDRANT's way..."
    ),
    "only_stopwords": "the and of to a in is it that was he for on are as with",
    "repeated_words": "search search search engine engine vector search database",
    "numbers": "In 2024, 3.14 and 1,000,000 users paid $9.99 for v2 of the API 42x.",
    "non_ascii_latin": "café naïve façade résumé Zürich jalapeño coöperate Straße",
    "decomposed_accents": unicodedata.normalize("NFD", "café naïve"),
    "contractions": (
        "Don't you think children's toys aren't what they'd been? I'm sure we've seen 'em."
    ),
    "stemming": "Running runners ran quickly; the RUNNER runs. Connection connected connecting!",
    "greek_cyrillic_cjk": "ΟΔΟΣ Σοφία Привет, мир! 東京タワー hello世界 x² ½",
    "whitespace": "  tabs\tand\nnewlines\r\n  everywhere  ",
    "empty": "",
    "long": " ".join(
        [
            "Information retrieval systems rank documents by relevance to a user's query; "
            "BM25 weighs term frequency against document length, saturating repeated terms."
        ]
        * 30
    ),
}


@pytest.fixture(scope="module")
def fastembed_bm25() -> SparseTextEmbedding:
    return SparseTextEmbedding(
        "Qdrant/bm25", specific_model_path=str(STOPWORDS_DIR), local_files_only=True
    )


@pytest.fixture(scope="module")
def qdrant_bm25() -> Any:
    return qdrant_edge.Bm25()  # defaults: English, word tokenizer, k=1.2, b=0.75, avg_len=256


def _sorted(indices: object, values: object) -> tuple[np.ndarray, np.ndarray]:
    idx = np.asarray(indices, dtype=np.int64)
    val = np.asarray(values, dtype=np.float64)
    order = np.argsort(idx)
    return idx[order], val[order]


def fe_doc(model: SparseTextEmbedding, text: str) -> tuple[np.ndarray, np.ndarray]:
    (emb,) = list(model.embed([text]))
    return _sorted(emb.indices, emb.values)


def fe_query(model: SparseTextEmbedding, text: str) -> tuple[np.ndarray, np.ndarray]:
    (emb,) = list(model.query_embed(text))
    return _sorted(emb.indices, emb.values)


def qd_doc(model: Any, text: str) -> tuple[np.ndarray, np.ndarray]:
    vec = model.embed_document(text)
    return _sorted(vec.indices, vec.values)


def qd_query(model: Any, text: str) -> tuple[np.ndarray, np.ndarray]:
    vec = model.embed_query(text)
    return _sorted(vec.indices, vec.values)


def expected_doc(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """BM25 document vector of split, lowercased tokens.

    Tokens are stemmed but not stopword-filtered, and k, b and avg_len are the defaults.
    """
    stemmer = SnowballStemmer("english")
    counts = Counter(stemmer.stem_word(t) for t in tokens)
    norm = K * (1 - B + B * sum(counts.values()) / AVG_LEN)
    weights = {abs(mmh3.hash(t)): n * (K + 1) / (n + norm) for t, n in counts.items()}
    return _sorted(list(weights), list(weights.values()))


def assert_same(
    actual: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray]
) -> None:
    np.testing.assert_array_equal(actual[0], expected[0])
    np.testing.assert_allclose(actual[1], expected[1], rtol=0, atol=TOL)


def assert_differ(
    actual: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]
) -> None:
    same = actual[0].shape == other[0].shape and bool(
        np.array_equal(actual[0], other[0]) and np.allclose(actual[1], other[1], atol=TOL)
    )
    assert not same


# --- the shipped stopword file -----------------------------------------------------------------


def test_stopword_file_is_package_data() -> None:
    path = STOPWORDS_DIR / "english.txt"
    assert path.is_file(), f"{path} missing: fastembed would silently use no stopwords"
    words = path.read_text(encoding="utf-8").splitlines()
    assert len(words) == 179  # the NLTK English list
    assert len(set(words)) == len(words)
    assert all(w and w == w.strip().lower() and w.isascii() for w in words)
    assert words[:4] == ["i", "me", "my", "myself"]
    assert words[-1] == "wouldn't"


def test_fastembed_loads_the_shipped_stopwords(fastembed_bm25: SparseTextEmbedding) -> None:
    words = (STOPWORDS_DIR / "english.txt").read_text(encoding="utf-8").splitlines()
    assert isinstance(fastembed_bm25.model, Bm25)
    assert fastembed_bm25.model.stopwords == set(words)


def test_every_shipped_stopword_is_dropped_by_both(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    # This includes the apostrophe forms, which both tokenizers split into stopword pieces.
    for word in (STOPWORDS_DIR / "english.txt").read_text(encoding="utf-8").splitlines():
        assert fe_query(fastembed_bm25, word)[0].size == 0, word
        assert qd_query(qdrant_bm25, word)[0].size == 0, word
        assert qd_query(qdrant_bm25, word.upper())[0].size == 0, word


@pytest.mark.parametrize("word", ["would", "could", "also", "however", "may", "us", "one", "get"])
def test_words_outside_the_list_are_kept_by_both(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any, word: str
) -> None:
    # These words are stopwords in larger lists (sklearn, Lucene, stopwords-iso), not in NLTK.
    assert_same(fe_query(fastembed_bm25, word), qd_query(qdrant_bm25, word))
    assert qd_query(qdrant_bm25, word)[0].size == 1


def test_missing_stopword_file_silently_breaks_parity(tmp_path: Path, qdrant_bm25: Any) -> None:
    bare = SparseTextEmbedding(
        "Qdrant/bm25", specific_model_path=str(tmp_path), local_files_only=True
    )
    assert isinstance(bare.model, Bm25)
    assert bare.model.stopwords == set()
    text = AGREEING_TEXTS["plain"]
    assert_differ(fe_doc(bare, text), qd_doc(qdrant_bm25, text))


# --- parity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(AGREEING_TEXTS))
def test_document_vectors_match(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any, name: str
) -> None:
    text = AGREEING_TEXTS[name]
    assert_same(fe_doc(fastembed_bm25, text), qd_doc(qdrant_bm25, text))


@pytest.mark.parametrize("name", list(AGREEING_TEXTS))
def test_query_vectors_match(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any, name: str
) -> None:
    text = AGREEING_TEXTS[name]
    fe, qd = fe_query(fastembed_bm25, text), qd_query(qdrant_bm25, text)
    assert_same(fe, qd)
    assert np.all(fe[1] == 1.0)  # fastembed returns int64 ones, Qdrant float32 1.0


def test_batched_document_vectors_match(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    texts = list(AGREEING_TEXTS.values())
    embeddings = list(fastembed_bm25.embed(texts, batch_size=4))
    assert len(embeddings) == len(texts)
    for text, emb in zip(texts, embeddings, strict=True):
        assert_same(_sorted(emb.indices, emb.values), qd_doc(qdrant_bm25, text))


def test_document_weights_follow_the_bm25_tf_formula(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    text = AGREEING_TEXTS["repeated_words"]  # search x4, engine x2, vector, database
    expected = expected_doc(text.split())
    assert_same(fe_doc(fastembed_bm25, text), expected)
    assert_same(qd_doc(qdrant_bm25, text), expected)


def test_custom_bm25_parameters_match() -> None:
    fe = SparseTextEmbedding(
        "Qdrant/bm25",
        specific_model_path=str(STOPWORDS_DIR),
        local_files_only=True,
        k=2.0,
        b=0.5,
        avg_len=10.0,
    )
    qd = qdrant_edge.Bm25(qdrant_edge.Bm25Config(k=2.0, b=0.5, avg_len=10.0))
    for text in AGREEING_TEXTS.values():
        assert_same(fe_doc(fe, text), qd_doc(qd, text))


def test_disabled_stemmer_and_stopwords_match() -> None:
    fe = SparseTextEmbedding(
        "Qdrant/bm25",
        specific_model_path=str(STOPWORDS_DIR),
        local_files_only=True,
        disable_stemmer=True,  # also disables the file stopwords in fastembed
    )
    qd = qdrant_edge.Bm25(
        qdrant_edge.Bm25Config(
            stemmer=qdrant_edge.DisabledStemmer(), stopwords=qdrant_edge.StopwordsSet()
        )
    )
    for text in AGREEING_TEXTS.values():
        assert_same(fe_doc(fe, text), qd_doc(qd, text))
        assert_same(fe_query(fe, text), qd_query(qd, text))


# --- documented differences --------------------------------------------------------------------


def test_underscore_joins_words_only_in_fastembed(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    text = "snake_case_identifier and foo_bar baz"
    fe, qd = fe_doc(fastembed_bm25, text), qd_doc(qdrant_bm25, text)
    assert_differ(fe, qd)
    assert_same(fe, expected_doc(["snake_case_identifier", "foo_bar", "baz"]))
    # Qdrant splits on "_", exactly as if it were a space.
    assert_same(qd, fe_doc(fastembed_bm25, text.replace("_", " ")))
    assert_same(qd, expected_doc(["snake", "case", "identifier", "foo", "bar", "baz"]))


def test_tokens_over_40_chars_are_dropped_only_by_fastembed(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    word45 = "pneumonoultramicroscopicsilicovolcanoconiosis"
    text = f"{word45} short words"
    fe, qd = fe_doc(fastembed_bm25, text), qd_doc(qdrant_bm25, text)
    assert_differ(fe, qd)  # indices differ, and doc_len (hence every value) differs too
    assert_same(fe, qd_doc(qdrant_bm25, "short words"))
    unlimited = SparseTextEmbedding(
        "Qdrant/bm25",
        specific_model_path=str(STOPWORDS_DIR),
        local_files_only=True,
        token_max_length=10**9,
    )
    assert_same(qd, fe_doc(unlimited, text))
    # Qdrant's max_token_len=40 matches fastembed here. But Qdrant checks the limit after
    # stemming, so a 41-char word whose stem has at most 40 chars is kept by Qdrant and dropped
    # by fastembed.
    qd40 = qdrant_edge.Bm25(qdrant_edge.Bm25Config(max_token_len=40))
    assert_same(qd_doc(qd40, text), fe)
    word41 = "a" * 38 + "ing"
    assert len(word41) == 41 and len(SnowballStemmer("english").stem_word(word41)) == 38
    assert_differ(qd_doc(qd40, f"{word41} short"), fe_doc(fastembed_bm25, f"{word41} short"))
    assert_same(qd_doc(qd40, f"{word41} short"), fe_doc(unlimited, f"{word41} short"))


def test_dotted_capital_i_splits_only_in_fastembed(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    # "İ".lower() == "i\u0307". fastembed lowercases the whole text and then splits on non-\w
    # characters, so U+0307 (a combining mark) splits the word, and "i" is a stopword.
    # Qdrant splits first (İ is a letter) and then lowercases each token, so the dot stays in the
    # token.
    text = "İstanbul İzmir"
    fe, qd = fe_doc(fastembed_bm25, text), qd_doc(qdrant_bm25, text)
    assert_differ(fe, qd)
    assert_same(fe, qd_doc(qdrant_bm25, "stanbul zmir"))
    assert_same(qd, expected_doc(["i\u0307stanbul", "i\u0307zmir"]))


def test_other_alphabetic_marks_stay_in_qdrant_tokens(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    # Devanagari vowel signs (Mc/Mn with Other_Alphabetic) are alphanumeric to Rust, not \w to
    # Python. The virama U+094D is not Alphabetic, so Qdrant splits on it too.
    text = "हिन्दी भाषा"
    fe, qd = fe_doc(fastembed_bm25, text), qd_doc(qdrant_bm25, text)
    assert_differ(fe, qd)
    assert_same(qd, expected_doc(["हिन", "दी", "भाषा"]))
    assert_same(fe, expected_doc(["ह", "न", "द", "भ", "ष"]))
    assert_same(fe, qd_doc(qdrant_bm25, "ह न द भ ष"))
    # Circled letters (So with Other_Alphabetic) behave the same way.
    assert_same(qd_doc(qdrant_bm25, "Ⓐbc"), expected_doc(["ⓐbc"]))
    assert_same(fe_doc(fastembed_bm25, "Ⓐbc"), qd_doc(qdrant_bm25, "bc"))


def test_characters_unassigned_in_pythons_unicode_database(
    fastembed_bm25: SparseTextEmbedding, qdrant_bm25: Any
) -> None:
    # U+31350 is a CJK Extension H ideograph, added in Unicode 15.0. Rust's tables know it as a
    # letter. Python's re uses unicodedata, which may not assign it yet (3.11 has Unicode 14).
    text = "q\U00031350z"
    if unicodedata.category("\U00031350") == "Cn":
        assert_same(qd_doc(qdrant_bm25, text), expected_doc([text]))
        assert_same(fe_doc(fastembed_bm25, text), expected_doc(["q", "z"]))
    else:
        assert_same(fe_doc(fastembed_bm25, text), qd_doc(qdrant_bm25, text))


def test_resolve_inference_bm25_matches_qdrant(qdrant_bm25: Any) -> None:
    """The whole path: a `qdrant/bm25` Document through our engine equals Qdrant's Bm25."""
    from qdrant_client import models

    from qdrant_beam.transforms.catalog import ModelCatalog
    from qdrant_beam.transforms.engine import InferenceEngine
    from qdrant_beam.transforms.store import ModelStore

    engine = InferenceEngine(ModelStore(ModelCatalog()))
    texts = list(AGREEING_TEXTS.values())
    points = [
        models.PointStruct(id=i, vector={"bm25": models.Document(text=text, model="qdrant/bm25")})
        for i, text in enumerate(texts)
        if text.strip()
    ]
    done, failed = resolve_points(engine, points)
    assert not failed
    for point in done:
        sparse = point.vector["bm25"]
        assert isinstance(sparse, models.SparseVector)
        assert all(isinstance(v, float) for v in sparse.values)
        text = texts[point.id]
        assert_same(_sorted(sparse.indices, sparse.values), qd_doc(qdrant_bm25, text.strip()))
