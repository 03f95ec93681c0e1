"""Translate qdrant-client's errors (REST, gRPC, local mode) into the package's taxonomy.

One context manager at the boundary, ``raise ... from exc``, so the rest of the sink only
sees ``TransientError`` (retried) and ``PermanentError`` (bisected, then dead-lettered).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from qdrant_beam.io.errors import (
    AuthError,
    PermanentError,
    QdrantBeamError,
    RateLimited,
    Timeout,
    Unavailable,
)

__all__ = ["RejectedPoints", "translate_errors"]


class RejectedPoints(PermanentError):
    """Qdrant refused the request's content (a 4xx): bad vector size, bad payload, ..."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def point_specific(self) -> bool:
        """Whether some points may be fine (bad input), not the whole request (e.g. 404)."""
        return self.status_code in (None, 400, 413, 422)


def _rest_message(content: bytes) -> str:
    try:
        body = json.loads(content)
        status = body.get("status")
        if isinstance(status, dict) and status.get("error"):
            return str(status["error"])
    except (ValueError, AttributeError):
        pass
    return content[:500].decode("utf-8", "replace").strip()


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Raises ``QdrantBeamError`` subclasses in place of client library errors."""
    from qdrant_client.common.client_exceptions import QdrantException, ResourceExhaustedResponse
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    try:
        yield
    except QdrantBeamError:
        raise
    except ResourceExhaustedResponse as exc:
        raise RateLimited(f"429 rate limited: {exc.message}", float(exc.retry_after_s)) from exc
    except UnexpectedResponse as exc:
        raise _from_status(exc.status_code, _rest_message(exc.content)) from exc
    except ResponseHandlingException as exc:
        source = exc.source
        name = type(source).__name__
        if "Timeout" in name:
            raise Timeout(f"request timed out: {name}: {source}") from exc
        raise Unavailable(f"connection failed: {name}: {source}") from exc
    except QdrantException as exc:
        # e.g. a 429 whose Retry-After is not an integer; qdrant-client refuses to parse it.
        if "Retry-After" in str(exc):
            raise RateLimited(f"429 rate limited: {exc}", None) from exc
        raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        grpc_error = _from_grpc(exc)
        if grpc_error is not None:
            raise grpc_error from exc
        if isinstance(exc, (ValueError, KeyError, TypeError)):  # local mode rejects input
            raise RejectedPoints(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
        raise


def _from_status(status: int | None, message: str) -> QdrantBeamError:
    text = f"HTTP {status}: {message}"
    if status == 429:
        return RateLimited(text, None)
    if status in (401, 403):
        return AuthError(text)
    if status == 408:
        return Timeout(text)
    if status is None or status >= 500:
        return Unavailable(text, status)
    return RejectedPoints(text, status)


def _from_grpc(exc: Exception) -> QdrantBeamError | None:
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpcio ships with qdrant-client
        return None
    if not isinstance(exc, grpc.RpcError) or not hasattr(exc, "code"):
        return None
    code = exc.code()
    details = exc.details() if hasattr(exc, "details") else str(exc)
    text = f"gRPC {code.name}: {details}"
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if "larger than max" in details:  # the request is too big: split it, don't wait
            return RejectedPoints(text, 413)
        return RateLimited(text, None)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Timeout(text)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return AuthError(text)
    status = _GRPC_AS_HTTP.get(code.name)
    if status is not None:
        return RejectedPoints(text, status)
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(text, 503)  # overload or restart: retry and shrink the window
    return Unavailable(text)


#: gRPC codes for rejected content, as the HTTP status Qdrant's REST API gives the same error.
_GRPC_AS_HTTP = {
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 412,
    "OUT_OF_RANGE": 400,
}
