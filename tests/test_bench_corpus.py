"""The benchmark corpus builder: WordNet data lines to records, glosses or article-length."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import wordnet_corpus

# wndb(5WN) lines: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [ptr]... | gloss
NOUNS = """\
  1 This software and database is being provided to you, the LICENSEE, by Princeton
00001740 03 n 01 kiln 0 002 ~ 00001930 n 0000 @ 00002137 n 0000 | an oven for firing pottery
00001930 05 n 02 tunnel_kiln 0 lehr 0 001 @ 00001740 n 0000 | a long kiln that wares move through
00002137 06 n 01 oven(a) 0 001 + 00000100 v 0000 | an enclosed compartment for heating
00003000 06 n 01 loner 0 000 | a synset that nothing points to
"""
VERBS = "00000100 30 v 01 bake 0 000 | cook and make edible by putting in a hot oven\n"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    folder = tmp_path / "extracted" / "usr" / "share" / "wordnet"
    folder.mkdir(parents=True)
    (folder / "data.noun").write_text(NOUNS, encoding="utf-8")
    (folder / "data.verb").write_text(VERBS, encoding="utf-8")
    for suffix in ("adj", "adv"):
        (folder / f"data.{suffix}").write_text("", encoding="utf-8")
    return tmp_path


def read(path: Path) -> dict[str, dict[str, str]]:
    return {r["doc_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_glosses_are_one_record_per_synset_with_lemmas_as_title(cache: Path) -> None:
    out = cache / "glosses.jsonl"
    assert wordnet_corpus.write_corpus(out, cache=cache) == 5
    records = read(out)
    assert records["wn-n-00001930"] == {
        "doc_id": "wn-n-00001930",
        "title": "tunnel kiln, lehr",
        "body": "a long kiln that wares move through",
        "pos": "noun",
    }
    assert records["wn-n-00002137"]["title"] == "oven"  # the (a) marker dropped


def test_articles_follow_relations_breadth_first_until_long_enough(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wordnet_corpus, "ARTICLE_WORDS", (15, 30))
    out = cache / "articles.jsonl"
    wordnet_corpus.write_corpus(out, cache=cache, shape="articles")
    records = read(out)
    assert records["wn-n-00001740"]["body"] == (
        "an oven for firing pottery. tunnel kiln: a long kiln that wares move through. "
        "oven: an enclosed compartment for heating."
    )  # 5 + 9 + 6 words: stops at the first length of at least 15
    assert records["wn-n-00003000"]["body"] == "a synset that nothing points to."
    assert set(records["wn-n-00001740"]) == {"doc_id", "title", "body", "pos"}


def test_articles_skip_a_relation_that_would_pass_the_cap(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wordnet_corpus, "ARTICLE_WORDS", (30, 12))
    out = cache / "articles.jsonl"
    wordnet_corpus.write_corpus(out, cache=cache, shape="articles")
    body = read(out)["wn-n-00001740"]["body"]
    assert body == "an oven for firing pottery. oven: an enclosed compartment for heating."


def test_an_unknown_shape_is_refused(cache: Path) -> None:
    with pytest.raises(ValueError, match="unknown corpus shape"):
        wordnet_corpus.write_corpus(cache / "x.jsonl", cache=cache, shape="tweets")
