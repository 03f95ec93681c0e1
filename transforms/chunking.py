"""Token-aware chunking of long texts, with ``semantic-text-splitter``.

A text model sees only its window (all-MiniLM-L6-v2: 256 tokens, [CLS] and [SEP] included);
past it, text is cut off. A chunker splits a text into pieces of at most ``max_tokens``
tokens, counted with the model's own tokenizer, preferring paragraph breaks, then sentence
ends, then words, then tokens, and overlapping consecutive pieces by up to ``overlap`` tokens
of whole units. A text that fits is one chunk. Each chunk keeps its character span in the
original text.

``semantic-text-splitter`` was chosen over ``semchunk`` and ``chonkie`` on a 200-document
sample (max 240 tokens, overlap 40): it never exceeded the limit or lost text, kept 86-95% of
chunk ends at paragraph or sentence ends with overlap (semchunk 50-63%), filled chunks to 0.8
of the limit (semchunk 0.61-0.68, so a third more chunks to embed), releases the GIL and has
no Python dependencies; semchunk split 1.4-1.7x faster, a few percent of a pipeline whose
cost is the model. Figures: bench/README.md.

Remote models have no tokenizer here: their tokens are estimated (UTF-8 bytes / 3, an upper
bound for English BPE), so their chunks stay under the provider's limit with room to spare.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from semantic_text_splitter import TextSplitter

__all__ = ["SPLITTER_VERSION", "Chunk", "Chunker"]

#: Part of a chunked spec's content hash: another minor version may split differently.
SPLITTER_VERSION = f"semantic-text-splitter {version('semantic-text-splitter')}"

_LONE_NEWLINE = re.compile(r"(?<!\n)\n(?!\n)")


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a text: ``text == source[start:end]``."""

    index: int
    start: int
    end: int
    text: str


class Chunker:
    """Splits texts for one model; build on the worker (the splitter does not pickle).

    Args:
        max_tokens: tokens per chunk, special tokens excluded.
        overlap: at most this many tokens repeated from the previous chunk (whole units).
        boundaries: ``paragraph``: only blank lines count as breaks above sentences (lines
            wrapped inside a paragraph do not end a chunk); ``line``: every line break does.
        tokenizer: the model's ``tokenizers.Tokenizer`` (truncation off), or None to count
            with ``count``.
        count: tokens of a text when there is no tokenizer (remote models).
    """

    def __init__(
        self,
        max_tokens: int,
        *,
        overlap: int = 0,
        boundaries: str = "paragraph",
        tokenizer: Any = None,
        count: Callable[[str], int] | None = None,
    ) -> None:
        if overlap >= max_tokens:
            raise ValueError(f"overlap {overlap} must be below max_tokens {max_tokens}")
        self.max_tokens = max_tokens
        self._reflow = boundaries == "paragraph"
        if tokenizer is not None:
            self._splitter = TextSplitter.from_huggingface_tokenizer(
                tokenizer, max_tokens, overlap=overlap
            )
        elif count is not None:
            self._splitter = TextSplitter.from_callback(count, max_tokens, overlap=overlap)
        else:
            raise ValueError("a chunker needs a tokenizer or a count function")

    def split(self, text: str) -> list[Chunk]:
        """The chunks of ``text``, in order; none for empty or whitespace-only text."""
        # A lone newline becomes a space of the same length: spans stay valid, and lines
        # wrapped inside a paragraph no longer rank above sentence ends.
        work = _LONE_NEWLINE.sub(" ", text) if self._reflow else text
        chunks = []
        for index, (start, piece) in enumerate(self._splitter.chunk_indices(work)):
            end = start + len(piece)
            chunks.append(Chunk(index, start, end, text[start:end]))
        return chunks
