"""Which models exist locally and where: the spec's ``models:`` map plus search folders.

Picklable and cheap; the workers rebuild loaded models from it (config, not objects).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qdrant_beam.transforms.backends.local import find_model_dir
from qdrant_beam.transforms.backends.registry import (
    InputKind,
    ModelInfo,
    VectorKind,
    describe_model,
)

__all__ = ["LocalModel", "ModelCatalog"]


class LocalModel(BaseModel):
    """Where a model's files are, and what a custom model is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(None, description="Folder holding the model files.")
    kind: VectorKind | None = Field(
        None, description="Vector kind of a custom model that fastembed does not list."
    )
    dim: int | None = Field(None, gt=0, description="Vector size of a custom model.")
    pooling: Literal["mean", "cls"] = Field("mean", description="Pooling of a custom model.")
    normalization: bool = Field(True, description="L2-normalise a custom model's output.")


@dataclasses.dataclass(frozen=True)
class ModelCatalog:
    """Model name -> local folder and facts; names compare case-insensitively."""

    models: Mapping[str, LocalModel] = dataclasses.field(default_factory=dict)
    search_paths: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        models: Mapping[str, LocalModel | Mapping[str, Any] | str] | None = None,
        search_paths: tuple[str, ...] | list[str] = (),
    ) -> ModelCatalog:
        """Build from loose input: ``{"name": "dir"}`` or ``{"name": {"path": ..., ...}}``."""
        parsed: dict[str, LocalModel] = {}
        for name, entry in (models or {}).items():
            if isinstance(entry, LocalModel):
                parsed[name] = entry
            elif isinstance(entry, (str, os.PathLike)):
                parsed[name] = LocalModel(path=str(entry))
            else:
                parsed[name] = LocalModel.model_validate(entry)
        return cls(parsed, tuple(str(p) for p in search_paths))

    def local(self, name: str) -> LocalModel | None:
        lower = name.lower()
        return next((m for n, m in self.models.items() if n.lower() == lower), None)

    def describe(self, name: str, input_kind: InputKind) -> ModelInfo:
        """Raises ``SpecError`` for unknown names, naming the fix."""
        local = self.local(name)
        return describe_model(
            name,
            input_kind,
            declared_kind=local.kind if local else None,
            declared_dim=local.dim if local else None,
            has_local_folder=bool(local and local.path),
            pooling=local.pooling if local else "mean",
            normalization=local.normalization if local else True,
        )

    def all_search_paths(self) -> list[str]:
        extra = os.environ.get("QDRANT_BEAM_MODELS", "")
        return [*self.search_paths, *(p for p in extra.split(os.pathsep) if p)]

    def folder(self, info: ModelInfo, load_options: Mapping[str, Any]) -> Path:
        """Raises ``ModelNotFound`` naming every folder searched."""
        local = self.local(info.name)
        return find_model_dir(
            info,
            explicit=local.path if local else None,
            search_paths=self.all_search_paths(),
            load_options=dict(load_options),
        )
