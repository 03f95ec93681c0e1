"""The spec: how a record becomes a Qdrant point, validated in full before a pipeline starts.

Example (YAML)::

    collection: articles
    id: "{doc_id}"
    payload: {exclude: [body]}
    vectors:
      dense: {text: "{title}. {body}", model: sentence-transformers/all-MiniLM-L6-v2}
      dense_64: {text: "{title}. {body}", model: sentence-transformers/all-MiniLM-L6-v2,
                 options: {mrl: 64}}
      bm25: {text: "{title}. {body}", model: qdrant/bm25}
    models:
      sentence-transformers/all-MiniLM-L6-v2: {path: models/all-MiniLM-L6-v2}
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from qdrant_beam.io.errors import QdrantBeamError, SpecError
from qdrant_beam.transforms.backends.providers import PROVIDERS, ProviderConfig
from qdrant_beam.transforms.backends.registry import Family, InputKind, ModelInfo, VectorKind
from qdrant_beam.transforms.catalog import LocalModel, ModelCatalog
from qdrant_beam.transforms.options import SplitOptions, split_options
from qdrant_beam.transforms.templates import Template

__all__ = [
    "CHUNK_FIELD",
    "ChunkingSpec",
    "ChunksSpec",
    "LocalModel",
    "PayloadSpec",
    "PointsSpec",
    "VectorSpec",
    "load_spec",
    "problems",
]

#: Default namespace of UUIDv5 point ids; change it with ``id_namespace``.
DEFAULT_ID_NAMESPACE = uuid.UUID("6f1c3f0e-6d55-5b8e-9a4e-2f2b8a7a0b5e")

Distance = Literal["Cosine", "Dot", "Euclid", "Manhattan"]


class _Strict(BaseModel):
    # no protected namespaces: `model_search_paths` is a spec field, not a pydantic method
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


#: The placeholder of a chunk's text in the vector templates of a spec with ``chunks``.
CHUNK_FIELD = "chunk"


class ChunkingSpec(_Strict):
    """How a long text is split: tokens counted with the model's own tokenizer."""

    max_tokens: int | None = Field(
        None,
        ge=8,
        description="Tokens per chunk, special tokens excluded; default: the model's window "
        "less its special tokens (for remote models, the provider's input limit).",
    )
    overlap: int = Field(
        0, ge=0, description="At most this many tokens repeated from the previous chunk."
    )
    boundaries: Literal["paragraph", "line"] = Field(
        "paragraph",
        description="Breaks preferred above sentences: blank lines only (paragraph), or every "
        "line break (line). Then sentences, words, tokens.",
    )
    max_chunks: int | None = Field(None, ge=1, description="Chunks per record at most.")
    over_max: Literal["truncate", "dead_letter"] = Field(
        "truncate", description="A record over max_chunks: keep its first chunks, or fail it."
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> ChunkingSpec:
        if self.max_tokens is not None and self.overlap >= self.max_tokens:
            raise ValueError(f"overlap {self.overlap} must be below max_tokens {self.max_tokens}")
        return self


class ChunksSpec(ChunkingSpec):
    """Chunk points: one point per chunk of ``text``; vectors whose template reads ``{chunk}``
    are computed per chunk, the others once per record and copied to its chunks."""

    text: str = Field(..., description="Template of the text to split, e.g. '{body}'.")
    include_text: bool = Field(False, description="Keep each chunk's text as `chunk_text`.")
    model: str | None = Field(
        None,
        description="Model whose tokenizer counts tokens; default: the first per-chunk vector's.",
    )


class VectorSpec(_Strict):
    """One named vector, written as an inference object: an input template, a model, options."""

    text: str | None = Field(None, description="Text template over record fields: '{title}'.")
    image: str | None = Field(
        None,
        description="Image template: a field holding a URL, path, base64, data URL or bytes.",
    )
    model: str = Field(..., description="Model name, routed as in Qdrant's Inference API.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Model options, e.g. {mrl: 64, input_type: query}."
    )
    distance: Distance = Field("Cosine", description="Distance of a dense or multi-vector.")
    on_disk: bool | None = Field(None, description="Keep this vector on disk.")
    modifier: Literal["idf", "none"] | None = Field(
        None, description="Sparse vectors only; defaults to 'idf' for models that need it."
    )
    multivector_comparator: Literal["max_sim"] = Field(
        "max_sim", description="Comparator of a multi-vector."
    )
    chunking: ChunkingSpec | None = Field(
        None,
        description="Split the text into chunks and store their vectors as one multivector "
        "(max_sim); dense text models only.",
    )

    @property
    def input_kind(self) -> InputKind:
        return InputKind.TEXT if self.text is not None else InputKind.IMAGE

    @property
    def template(self) -> str:
        return self.text if self.text is not None else self.image  # type: ignore[return-value]


class PayloadSpec(_Strict):
    """Which record fields become payload; by default all of them."""

    include: list[str] | None = Field(None, description="Fields to keep; null keeps all.")
    exclude: list[str] = Field(default_factory=list, description="Fields to drop.")


class PointsSpec(_Strict):
    """The whole mapping from a record to a point in one collection."""

    collection: str = Field(..., min_length=1, description="Qdrant collection name.")
    id: str = Field(
        ...,
        description="Id template, e.g. '{doc_id}'. Integers and UUIDs are kept; any other key "
        "becomes a deterministic UUIDv5.",
    )
    id_namespace: uuid.UUID = Field(
        DEFAULT_ID_NAMESPACE, description="Namespace of UUIDv5 ids built from other keys."
    )
    payload: PayloadSpec = Field(default_factory=PayloadSpec)
    vectors: dict[str, VectorSpec] = Field(..., min_length=1, description="Named vectors.")
    payload_indexes: dict[
        str, Literal["keyword", "integer", "float", "bool", "geo", "datetime", "text", "uuid"]
    ] = Field(
        default_factory=dict, description="Payload field -> index type, made with the collection."
    )
    models: dict[str, LocalModel] = Field(
        default_factory=dict, description="Model name -> local folder (and custom model facts)."
    )
    model_search_paths: list[str] = Field(
        default_factory=list,
        description="Folders searched for models not mapped under `models:`; "
        "$QDRANT_BEAM_MODELS adds more.",
    )
    providers: dict[str, ProviderConfig] = Field(
        default_factory=dict,
        description="Remote provider settings by provider (openai, cohere, jinaai, openrouter): "
        "base URL, key variable, concurrency. Never a key itself.",
    )
    chunks: ChunksSpec | None = Field(
        None, description="Write one point per chunk of a long text (chunk points)."
    )

    _infos: dict[str, ModelInfo] = PrivateAttr(default_factory=dict)
    _splits: dict[str, SplitOptions] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> PointsSpec:
        _parse(self.id, "id")
        for provider in self.providers:
            if provider not in PROVIDERS:
                raise ValueError(
                    f"providers.{provider}: unknown provider; use one of {', '.join(PROVIDERS)}"
                )
        for name, vector in self.vectors.items():
            where = f"vectors.{name}"
            if not name:
                raise ValueError("vectors: a vector name may not be empty")
            if (vector.text is None) == (vector.image is None):
                raise ValueError(f"{where}: give exactly one of `text` or `image`")
            _parse(vector.template, f"{where}.{vector.input_kind.value}")
            try:
                info = self.catalog().describe(vector.model, vector.input_kind)
                split = split_options(info, vector.options)
            except QdrantBeamError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if split.secret is not None:
                raise ValueError(
                    f"{where}.options: an API key does not belong in a spec (specs are "
                    f"pickled into the pipeline and logged); set it in the environment of the "
                    f"workers, or name the variable in providers.<name>.api_key_env"
                )
            if info.family is Family.REMOTE and not (split.mrl or split.output_dim or info.dim):
                raise ValueError(
                    f"{where}: the size of remote model {vector.model!r} is not known; set its "
                    f"size option (dimensions / output_dimension) or declare `dim` for it "
                    f"under `models:`"
                )
            if vector.modifier is not None and info.vector_kind is not VectorKind.SPARSE:
                raise ValueError(f"{where}.modifier: only sparse vectors take a modifier")
            self._check_chunking(name, vector, info)
            self._infos[name] = info
            self._splits[name] = split
        self._check_chunks()
        return self

    def _check_chunking(self, name: str, vector: VectorSpec, info: ModelInfo) -> None:
        where = f"vectors.{name}"
        per_chunk = CHUNK_FIELD in Template.parse(vector.template).fields
        if per_chunk and self.chunks is None:
            raise ValueError(f"{where}: {{chunk}} needs a top-level `chunks` block")
        if per_chunk and vector.input_kind is not InputKind.TEXT:
            raise ValueError(f"{where}: only text vectors are computed per chunk")
        if vector.chunking is None:
            return
        if self.chunks is not None:
            raise ValueError(f"{where}.chunking: a spec with chunk points chunks with `chunks`")
        if vector.input_kind is not InputKind.TEXT or info.vector_kind is not VectorKind.DENSE:
            raise ValueError(
                f"{where}.chunking: only dense text vectors are chunked into a multivector; "
                f"model {info.name!r} makes {info.vector_kind.value} vectors"
            )

    def _check_chunks(self) -> None:
        if self.chunks is None:
            return
        _parse(self.chunks.text, "chunks.text")
        per_chunk = self.per_chunk_vectors()
        if not per_chunk:
            raise ValueError("chunks: no vector reads {chunk}; e.g. text: '{title}. {chunk}'")
        if self.chunks.model is not None and self.chunks.model not in {
            self.vectors[n].model for n in per_chunk
        }:
            raise ValueError(
                f"chunks.model: {self.chunks.model!r} is not the model of a per-chunk vector"
            )

    def per_chunk_vectors(self) -> list[str]:
        """The vectors computed per chunk: their template reads ``{chunk}``."""
        return [
            name
            for name, vector in self.vectors.items()
            if CHUNK_FIELD in Template.parse(vector.template).fields
        ]

    def chunk_model_vector(self) -> str:
        """The per-chunk vector whose model's tokenizer counts the tokens of chunk points."""
        per_chunk = self.per_chunk_vectors()
        model = self.chunks.model if self.chunks is not None else None
        return next((n for n in per_chunk if self.vectors[n].model == model), per_chunk[0])

    def is_multivector(self, vector: str) -> bool:
        """Stored as a multivector (max_sim): a late-interaction model, or a chunked vector."""
        return (
            self._infos[vector].vector_kind is VectorKind.MULTIVECTOR
            or self.vectors[vector].chunking is not None
        )

    def catalog(self) -> ModelCatalog:
        """Where this spec's models are; what ``ResolveInference`` loads them from."""
        return ModelCatalog(self.models, tuple(self.model_search_paths))

    def split_options(self, vector: str) -> SplitOptions:
        return self._splits[vector]

    def model_info(self, vector: str) -> ModelInfo:
        return self._infos[vector]

    def vector_size(self, vector: str) -> int | None:
        """Size of a dense or multi-vector (MRL applied); None for sparse vectors."""
        info = self._infos[vector]
        if info.vector_kind is VectorKind.SPARSE:
            return None
        split = self._splits[vector]
        return split.mrl or split.output_dim or info.dim

    def sparse_modifier(self, vector: str) -> str | None:
        if self._infos[vector].vector_kind is not VectorKind.SPARSE:
            return None
        explicit = self.vectors[vector].modifier
        if explicit is not None:
            return explicit
        return "idf" if self._infos[vector].requires_idf else "none"

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return cls.model_json_schema()


def _parse(template: str, where: str) -> Template:
    try:
        return Template.parse(template)
    except SpecError as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_spec(source: str | os.PathLike[str] | dict[str, Any]) -> PointsSpec:
    """Load and validate a spec from a YAML/JSON file, or a dict.

    Raises:
        SpecError: with every problem, each prefixed by the field it is in.
    """
    if isinstance(source, dict):
        data: Any = source
        origin = "spec"
    else:
        path = Path(source)
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read spec {origin}: {exc}") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise SpecError(
                f"spec {origin} is not valid {path.suffix[1:] or 'YAML'}: {exc}"
            ) from None
    if not isinstance(data, dict):
        raise SpecError(f"spec {origin} must be a mapping, got {type(data).__name__}")
    try:
        return PointsSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"invalid spec {origin}:\n  " + "\n  ".join(problems(exc))) from None


def problems(exc: ValidationError) -> list[str]:
    """A pydantic error as ``field.path: message`` lines, one per problem."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        out.append(f"{loc}: {msg}" if loc else msg)
    return out
