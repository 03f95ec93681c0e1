"""Read an image input (URL, path, base64, data URL or bytes) and decode it safely with Pillow.

Every failure raises ``InvalidImage`` with a reason a person can act on; the pixel limit is
checked from the header, before any pixel is decoded, so decompression bombs cost nothing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import os
import re
import threading
import urllib.parse
import urllib.request
import warnings
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from qdrant_beam.io.errors import InvalidImage
from qdrant_beam.io.tls import shared_tls_context

__all__ = ["ImageLimits", "ImageReader", "decode_image"]

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_B64_ALPHABET = re.compile(r"^[A-Za-z0-9+/=\s_-]+$")
_SNIFF_UNSUPPORTED = {
    b"<svg": "SVG",
    b"<?xm": "SVG/XML",
    b"%PDF": "PDF",
    b"\x00\x00\x00\x1cftypavif": "AVIF",
}
#: Pillow names some files after a container of a supported format: a JPEG carrying a
#: Multi-Picture (MPF) segment, as many cameras and phones write, opens as "MPO".
_FORMAT_ALIASES = {"MPO": "JPEG"}
#: Longest input echoed back in a message; base64 strings can run to megabytes.
_ECHO_CHARS = 80


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """Bounds that keep one bad input from exhausting a worker."""

    max_pixels: int = 40_000_000
    max_bytes: int = 20 * 1024 * 1024
    formats: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
    fetch_timeout_s: float = 20.0


def decode_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Decode bytes to an RGB image, refusing unsupported formats and oversized images."""
    if len(data) > limits.max_bytes:
        raise InvalidImage(f"image is {len(data)} bytes, over the limit of {limits.max_bytes}")
    for magic, name in _SNIFF_UNSUPPORTED.items():
        if data[: len(magic)] == magic or data.lstrip()[: len(magic)] == magic:
            raise InvalidImage(
                f"unsupported image format {name}; supported: {', '.join(sorted(limits.formats))}"
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(f"image too large: {exc}") from None
    except UnidentifiedImageError:
        raise InvalidImage(
            f"cannot identify image data ({len(data)} bytes starting {data[:8]!r}): corrupt "
            f"bytes or an unsupported format"
        ) from None
    except Exception as exc:  # plugins raise OSError, ValueError, ... on a truncated header
        raise InvalidImage(
            f"corrupt or truncated image data ({len(data)} bytes starting {data[:8]!r}): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if _FORMAT_ALIASES.get(image.format or "", image.format) not in limits.formats:
        raise InvalidImage(
            f"unsupported image format {image.format}; "
            f"supported: {', '.join(sorted(limits.formats))}"
        )
    width, height = image.size
    if width * height > limits.max_pixels:
        raise InvalidImage(
            f"image too large: {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels}"
        )
    try:
        image.load()
        return image.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image too large: {exc}") from None
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, OverflowError...
        raise InvalidImage(f"corrupt {image.format} image data: {exc}") from None


class ImageReader:
    """Turns any supported image input into bytes; holds the HTTP client for URLs."""

    def __init__(self, limits: ImageLimits | None = None, client: httpx.Client | None = None):
        self.limits = limits or ImageLimits()
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()  # the engine loads images from a thread pool

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.limits.fetch_timeout_s,
                    follow_redirects=True,
                    transport=httpx.HTTPTransport(retries=2, verify=shared_tls_context()),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def read(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if not isinstance(value, str):
            raise InvalidImage(
                f"image input must be a URL, path, base64 string or bytes, "
                f"got {type(value).__name__}"
            )
        text = value.strip()
        if text.startswith("data:"):
            return self._data_url(text)
        if text.startswith(("http://", "https://")):
            return self._fetch(text)
        if _SCHEME.match(text):
            return self._filesystems(text)
        if os.path.isfile(text):
            with open(text, "rb") as handle:
                return handle.read(self.limits.max_bytes + 1)
        if text.startswith("/"):
            # Base64 of a JPEG starts with "/9j/", so a leading "/" is no proof of a path.
            jpeg = _strict_b64(text)
            if jpeg is not None and jpeg.startswith(b"\xff\xd8"):
                return jpeg
        if text.startswith(("/", "./", "../", "~")) or "." in text:
            raise InvalidImage(f"image file {_echo(text)} does not exist")
        return _b64(text)

    def load(self, value: Any) -> Image.Image:
        return decode_image(self.read(value), self.limits)

    def _data_url(self, text: str) -> bytes:
        """A ``data:image/...;base64,`` URL's bytes. The media type must be an image type
        (RFC 2397 reads an empty one as text/plain); which image format it names does not
        matter, since the bytes are decoded by what they hold, as browsers do."""
        header, sep, payload = text.partition(",")
        if not sep:
            raise InvalidImage("data URL has no ',' separating header and data")
        if not header.endswith(";base64"):
            raise InvalidImage(f"data URL must be base64-encoded, got header {header!r}")
        media_type = header[len("data:") :].split(";", 1)[0].strip().lower()
        if not media_type.startswith("image/"):
            named = repr(media_type) if media_type else "none (which means text/plain)"
            raise InvalidImage(
                f"data URL has media type {named}, not an image type such as image/png"
            )
        return _b64(payload)

    def _fetch(self, url: str) -> bytes:
        try:
            with self._http().stream("GET", url) as response:
                if response.status_code >= 400:
                    raise InvalidImage(f"image URL {url} answered HTTP {response.status_code}")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.limits.max_bytes:
                        raise InvalidImage(
                            f"image at {url} is over the limit of {self.limits.max_bytes} bytes"
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise InvalidImage(
                f"image URL {url} is unreachable: {type(exc).__name__}: {exc}"
            ) from None

    def _filesystems(self, path: str) -> bytes:
        from apache_beam.io.filesystems import FileSystems

        target = path
        if path.lower().startswith("file://"):
            # Beam registers no filesystem for "file://"; its local one takes plain paths.
            parts = urllib.parse.urlsplit(path)
            if parts.netloc not in ("", "localhost"):
                raise InvalidImage(f"cannot read image {path}: a file URL must name no host")
            target = urllib.request.url2pathname(parts.path)
        try:
            with FileSystems.open(target) as handle:
                data: bytes = handle.read(self.limits.max_bytes + 1)
                return data
        except Exception as exc:  # FileSystems raises many backend-specific types
            raise InvalidImage(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def _echo(text: str) -> str:
    if len(text) <= _ECHO_CHARS:
        return repr(text)
    return f"{text[:_ECHO_CHARS]!r}... ({len(text)} chars)"


def _strict_b64(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64(payload: str) -> bytes:
    compact = "".join(payload.split())
    if not compact or not _B64_ALPHABET.match(compact):
        raise InvalidImage("image string is not a URL, an existing path, or valid base64")
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage(f"invalid base64 image data: {exc}") from None
