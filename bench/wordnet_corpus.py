"""A real-English corpus for the benchmarks: the ~117,000 WordNet 3.0 synset glosses.

The glosses come from Debian's ``wordnet-base`` package, fetched without root by
``apt-get download`` into a cache folder and unpacked with ``dpkg-deb -x``. Each synset
becomes one record: ``doc_id``, ``title`` (its lemmas), ``body`` (its gloss) and ``pos``.
Records are shuffled with a fixed seed, so the first 5,000 of a 50,000 corpus are the same
5,000 records as a 5,000 corpus. Run:
``python bench/wordnet_corpus.py --n 50000 --out build/wordnet/corpus-50k.jsonl``.

``--shape articles`` gives the same records article-length bodies: a gloss is 11 words
(median), the project's own example articles 67. The body is the synset's gloss followed by
``lemma: gloss`` of the synsets WordNet relates it to (hypernyms, hyponyms, parts, members,
then their neighbours), until it holds ``ARTICLE_WORDS`` words: real WordNet text, about one
topic, the length of ``examples/articles.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "ARTICLE_WORDS",
    "DEFAULT_CACHE",
    "WordnetUnavailable",
    "ensure_wordnet",
    "load_records",
    "parse_data_file",
    "to_articles",
    "write_corpus",
]

PACKAGE = "wordnet-base"
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "build" / "wordnet"
_DICT_SUBDIR = Path("usr/share/wordnet")
#: data file suffix -> (doc_id prefix, pos name)
_POS = {"noun": ("n", "noun"), "verb": ("v", "verb"), "adj": ("a", "adj"), "adv": ("r", "adv")}
#: pointer pos letter -> doc_id prefix (adjective satellites live in data.adj)
_POINTER_POS = {"n": "n", "v": "v", "a": "a", "s": "a", "r": "r"}
#: an article body grows until it has at least the first, and never past the second, words
ARTICLE_WORDS = (55, 90)


class WordnetUnavailable(RuntimeError):
    """The ``wordnet-base`` package could not be fetched or unpacked."""


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WordnetUnavailable(f"{' '.join(cmd)} failed: {exc}") from exc
    if proc.returncode != 0:
        raise WordnetUnavailable(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.strip()}\n"
            f"The WordNet corpus needs Debian's {PACKAGE} package (apt-get download works "
            f"without root; try `apt-get update` first if the package is unknown)."
        )


def ensure_wordnet(cache: Path = DEFAULT_CACHE) -> Path:
    """The folder holding ``data.noun`` etc., downloading and unpacking the .deb if needed."""
    cache = cache.resolve()
    dict_dir = cache / "extracted" / _DICT_SUBDIR
    if all((dict_dir / f"data.{suffix}").is_file() for suffix in _POS):
        return dict_dir
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise WordnetUnavailable(
                f"{tool} not found: the WordNet corpus is built from Debian's {PACKAGE} "
                f"package and needs apt-get and dpkg-deb (no other source is used)."
            )
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        _run(["apt-get", "download", PACKAGE], cwd=cache)
        debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise WordnetUnavailable(f"apt-get download {PACKAGE} left no .deb in {cache}")
    extracted = cache / "extracted"
    shutil.rmtree(extracted, ignore_errors=True)
    _run(["dpkg-deb", "-x", str(debs[-1]), str(extracted)], cwd=cache)
    if not (dict_dir / "data.noun").is_file():
        raise WordnetUnavailable(f"{debs[-1].name} has no {_DICT_SUBDIR}/data.noun")
    return dict_dir


def _lemma(word: str) -> str:
    """``ice_cream`` -> ``ice cream``; adjective markers such as ``(a)``/``(ip)`` dropped."""
    if word.endswith(")") and "(" in word:
        word = word[: word.rindex("(")]
    return word.replace("_", " ")


def parse_data_file(path: Path, suffix: str) -> Iterator[dict[str, Any]]:
    """Records of one ``data.<suffix>`` file (format: wndb(5WN)); license lines skipped."""
    prefix, pos = _POS[suffix]
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("  ") or "|" not in line:
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, w_cnt = fields[0], int(fields[3], 16)
            words = [_lemma(fields[4 + 2 * i]) for i in range(w_cnt)]
            body = gloss.strip()
            if not body:
                continue
            at = 4 + 2 * w_cnt
            related = [
                f"wn-{_POINTER_POS[fields[at + 1 + 4 * i + 2]]}-{fields[at + 1 + 4 * i + 1]}"
                for i in range(int(fields[at]))
            ]
            yield {
                "doc_id": f"wn-{prefix}-{offset}",
                "title": ", ".join(dict.fromkeys(words)),
                "body": body,
                "pos": pos,
                "_related": related,
            }


def load_records(cache: Path = DEFAULT_CACHE) -> list[dict[str, Any]]:
    """Every synset of WordNet, in file order (noun, verb, adj, adv)."""
    dict_dir = ensure_wordnet(cache)
    out: list[dict[str, Any]] = []
    for suffix in _POS:
        out.extend(parse_data_file(dict_dir / f"data.{suffix}", suffix))
    return out


def _article(record: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    """The gloss, then ``lemma: gloss`` of related synsets, breadth first, to article length."""
    least, most = ARTICLE_WORDS
    parts, words = [record["body"]], len(record["body"].split())
    seen, queue = {record["doc_id"]}, list(record["_related"])
    while queue and words < least:
        doc_id = queue.pop(0)
        if doc_id in seen or doc_id not in by_id:
            continue
        seen.add(doc_id)
        other = by_id[doc_id]
        sentence = f"{other['title'].split(', ')[0]}: {other['body']}"
        length = len(sentence.split())
        if words + length <= most:
            parts.append(sentence)
            words += length
        queue.extend(other["_related"])
    return ". ".join(part.rstrip(". ") for part in parts) + "."


def to_articles(records: list[dict[str, Any]], all_records: list[dict[str, Any]]) -> None:
    """Give ``records`` article-length bodies from the synsets related to each (in place)."""
    by_id = {r["doc_id"]: r for r in all_records}
    bodies = [_article(r, by_id) for r in records]
    for record, body in zip(records, bodies, strict=True):
        record["body"] = body


def write_corpus(
    out: Path,
    n: int | None = None,
    *,
    seed: int = 7,
    cache: Path = DEFAULT_CACHE,
    shape: str = "glosses",
) -> int:
    """Write ``n`` shuffled records (all when None) as JSONL to ``out``; returns the count.

    ``shape="articles"``: the same records, with article-length bodies (``to_articles``)."""
    everything = load_records(cache)
    records = list(everything)
    random.Random(seed).shuffle(records)
    if n is not None:
        if n > len(records):
            raise ValueError(f"WordNet has {len(records):,} synsets, fewer than --n {n:,}")
        records = records[:n]
    if shape == "articles":
        records = [dict(r) for r in records]
        to_articles(records, everything)
    elif shape != "glosses":
        raise ValueError(f"unknown corpus shape {shape!r}")
    records = [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=None, help="records to write (default: all)")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    parser.add_argument("--seed", type=int, default=7, help="shuffle seed")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=".deb cache folder")
    parser.add_argument(
        "--shape",
        choices=("glosses", "articles"),
        default="glosses",
        help="glosses: one gloss per record; articles: article-length bodies",
    )
    args = parser.parse_args(argv)
    try:
        count = write_corpus(args.out, args.n, seed=args.seed, cache=args.cache, shape=args.shape)
    except WordnetUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count:,} WordNet records to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
