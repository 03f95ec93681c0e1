"""Local fastembed models, loaded from folders with no network, behind one ``embed`` method.

Models are found by :func:`find_model_dir`, which says every folder it tried when it fails.
``LocalEmbedder.embed`` returns a list (never a generator) so callers can retry or split.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qdrant_beam.io.errors import ModelNotFound, SpecError
from qdrant_beam.transforms.backends.registry import Family, ModelInfo

__all__ = ["LocalEmbedder", "TokenMeter", "bundled_bm25_dir", "find_model_dir"]

#: Tokenizer context when a folder does not state one (fastembed's own default).
DEFAULT_MAX_LENGTH = 512


def bundled_bm25_dir() -> Path:
    """The folder with the English stopword list shipped with qdrant-beam."""
    return Path(str(importlib.resources.files("qdrant_beam.transforms") / "data" / "stopwords"))


def _complete(folder: Path, info: ModelInfo, load: dict[str, Any]) -> bool:
    if info.is_bm25:
        return (folder / f"{load.get('language', 'english')}.txt").is_file()
    return (folder / info.model_file).is_file()


def find_model_dir(
    info: ModelInfo,
    *,
    explicit: str | None,
    search_paths: Sequence[str],
    load_options: dict[str, Any],
) -> Path:
    """The folder that holds ``info``'s files; raises ``ModelNotFound`` listing all tried."""
    candidates: list[Path] = []
    if load_options.get("specific_model_path"):
        candidates.append(Path(load_options["specific_model_path"]))
    if explicit:
        candidates.append(Path(explicit))
    for root in search_paths:
        base = Path(root)
        candidates += [
            base / info.name,
            base / info.name.replace("/", "--"),
            base / info.name.rsplit("/", 1)[-1],
        ]
    if info.is_bm25:
        candidates.append(bundled_bm25_dir())
    seen: list[str] = []
    for candidate in candidates:
        folder = candidate.expanduser()
        if str(folder) in seen:
            continue
        seen.append(str(folder))
        if folder.is_dir() and _complete(folder, info, load_options):
            return folder
    needs = f"{load_options.get('language', 'english')}.txt" if info.is_bm25 else info.model_file
    raise ModelNotFound(info.name, seen, hint=f"the folder must contain {needs}")


class TokenMeter:
    """Counts tokens with the model's own tokenizer: sorts inputs and detects truncation."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        config_path = folder / "tokenizer_config.json"
        max_length = DEFAULT_MAX_LENGTH
        if config_path.is_file():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            value = config.get("model_max_length")
            if isinstance(value, (int, float)) and 0 < value < 10**9:
                max_length = min(int(value), DEFAULT_MAX_LENGTH)
        self.max_length = max_length
        #: tokens the model adds around every input ([CLS] and [SEP] for BERT models)
        self.special_tokens = len(self._tokenizer.encode("").ids)

    @property
    def tokenizer(self) -> Any:
        """The model's ``tokenizers.Tokenizer``, with truncation and padding off."""
        return self._tokenizer

    def lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(enc.ids) for enc in self._tokenizer.encode_batch(list(texts))]


class LocalEmbedder:
    """One loaded fastembed model. Thread-safe: calls are serialised per model."""

    def __init__(self, info: ModelInfo, folder: Path, load_options: dict[str, Any]) -> None:
        self.info = info
        self.folder = folder
        self._lock = threading.Lock()
        kwargs = {k: v for k, v in load_options.items() if k != "specific_model_path"}
        self._model = _load(info, folder, kwargs)
        self.meter = (
            TokenMeter(folder)
            if info.family is not Family.IMAGE and (folder / "tokenizer.json").is_file()
            else None
        )

    def embed(
        self,
        inputs: Sequence[Any],
        *,
        is_query: bool,
        batch_size: int,
        lengths: Sequence[int] | None = None,
    ) -> list[Any]:
        """One vector per input: 1-D arrays (dense), 2-D arrays (multi), or (indices, values).

        With ``lengths`` (token counts of inputs sorted by length), padded batches are cut by
        ``padded_batches`` so that long inputs go in smaller batches.
        """
        embed = (
            self._model.query_embed
            if is_query and self.info.family is not Family.IMAGE
            else self._model.embed
        )
        raw: list[Any] = []
        with self._lock:
            for start, end in padded_batches(lengths, batch_size, len(inputs)):
                raw.extend(embed(list(inputs[start:end]), batch_size=end - start))
        if len(raw) != len(inputs):
            raise RuntimeError(
                f"model {self.info.name!r} returned {len(raw)} vectors for {len(inputs)} inputs"
            )
        if self.info.family is Family.SPARSE:
            return [(np.asarray(r.indices), np.asarray(r.values, dtype=np.float32)) for r in raw]
        return [np.asarray(r, dtype=np.float32) for r in raw]


_REGISTER_LOCK = threading.Lock()
#: per-batch attention memory (inputs x padded tokens^2) allowed to ``batch_size`` inputs of
#: this many tokens; longer inputs go in smaller batches
_BUDGET_TOKENS = 64


def padded_batches(
    lengths: Sequence[int] | None, batch_size: int, count: int
) -> list[tuple[int, int]]:
    """(start, end) of each padded batch over inputs sorted by token length.

    A transformer's activation memory grows with inputs x length^2 of its padded batch. With a
    fixed batch size, the longest text in the corpus would set the process's peak memory (and
    onnxruntime's arena keeps it), so a bigger corpus would need more memory. Bounding
    inputs x length^2 keeps the peak flat; on two cores, batches of 8-16 long inputs run as
    fast per token as batches of 64 (measured: 2 to 16 inputs of 250 tokens, all ~20/s).
    """
    if not lengths:
        return [(i, min(i + batch_size, count)) for i in range(0, count, batch_size)]
    budget = batch_size * _BUDGET_TOKENS**2
    out: list[tuple[int, int]] = []
    start = 0
    for i, length in enumerate(lengths):
        size = i + 1 - start
        if size > batch_size or size * max(length, 1) ** 2 > budget:
            out.append((start, i))
            start = i
    if start < count:
        out.append((start, count))
    return out


def _load(info: ModelInfo, folder: Path, kwargs: dict[str, Any]) -> Any:
    import fastembed

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    common = {"specific_model_path": str(folder), "local_files_only": True, **kwargs}
    try:
        if info.family is Family.TEXT:
            if info.custom:
                _register_custom(info)
            return fastembed.TextEmbedding(info.name, **common)
        if info.family is Family.SPARSE:
            return fastembed.SparseTextEmbedding(info.name, **common)
        if info.family is Family.LATE_INTERACTION:
            return fastembed.LateInteractionTextEmbedding(info.name, **common)
        if info.family is Family.IMAGE:
            return fastembed.ImageEmbedding(info.name, **common)
    except Exception as exc:  # fastembed and onnxruntime raise many unrelated types
        raise SpecError(
            f"cannot load model {info.name!r} from {folder}: {type(exc).__name__}: {exc}"
        ) from None
    raise SpecError(f"model {info.name!r} of family {info.family.value} is not a local model")


def _register_custom(info: ModelInfo) -> None:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    with _REGISTER_LOCK:
        if any(
            m["model"].lower() == info.name.lower() for m in TextEmbedding.list_supported_models()
        ):
            return
        TextEmbedding.add_custom_model(
            model=info.name,
            pooling=PoolingType.CLS if info.pooling == "cls" else PoolingType.MEAN,
            normalization=info.normalization,
            sources=ModelSource(hf=info.name),
            dim=int(info.dim or 0),
            model_file=info.model_file,
        )
