"""One error taxonomy for the whole package, shared by inference backends and the Qdrant sink.

::

    QdrantBeamError
    ├── SpecError                   the spec or a transform argument is wrong; raised before a run
    │   └── ModelNotFound           no local folder holds the model
    ├── TransientError              may succeed if tried again (retried by policy)
    │   ├── RateLimited             429; carries retry_after_s
    │   ├── Unavailable             5xx, connection refused or reset
    │   └── Timeout
    └── PermanentError              will fail again; the record goes to dead letters
        ├── InvalidRecord           a field is missing, null, of the wrong type, or empty
        ├── InvalidImage            undecodable, unsupported, oversized, unreachable, bad base64
        ├── UnsupportedOption       an option the model's backend does not understand
        ├── VectorSizeMismatch      a vector's size differs from what the collection expects
        └── AuthError               401/403

Only ``TransientError`` is ever retried.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "InvalidImage",
    "InvalidRecord",
    "ModelNotFound",
    "PermanentError",
    "QdrantBeamError",
    "RateLimited",
    "SpecError",
    "Timeout",
    "TransientError",
    "Unavailable",
    "UnsupportedOption",
    "VectorSizeMismatch",
]


class QdrantBeamError(Exception):
    """Base of every error this package raises on purpose."""


class SpecError(QdrantBeamError, ValueError):
    """The spec or a transform argument is invalid; raised at pipeline construction."""


class ModelNotFound(SpecError):
    """No local folder holds the model; names the model and every folder searched."""

    def __init__(self, model: str, searched: list[str], hint: str = "") -> None:
        self.model = model
        self.searched = searched
        where = ", ".join(searched) if searched else "(no folders configured)"
        super().__init__(
            f"model {model!r} was not found in any local folder; searched: {where}. "
            f"Put the model files there or map the name to a folder under `models:` in the spec"
            f"{'; ' + hint if hint else ''}."
        )


class TransientError(QdrantBeamError):
    """May succeed when tried again."""


class RateLimited(TransientError):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(TransientError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class Timeout(TransientError):
    pass


class PermanentError(QdrantBeamError):
    """Will fail again; the record goes to dead letters with this message."""


class InvalidRecord(PermanentError):
    pass


class InvalidImage(PermanentError):
    pass


class UnsupportedOption(PermanentError):
    pass


class VectorSizeMismatch(PermanentError):
    pass


class AuthError(PermanentError):
    pass
