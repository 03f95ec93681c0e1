"""What to pass as httpx's ``verify``: no CA bundle for plain-http clients, one shared
TLS context for the rest.

httpx builds a TLS context for every client it makes, and loads certifi's CA bundle into
it (45-120 ms measured here), even when the client only ever speaks plain http: a job's
Qdrant clients and provider clients each paid it, at graph time and again in ``setup``.
A client whose base URL is ``http://`` never makes a TLS connection, so it gets no bundle;
every other client shares one default context per process (``ssl.SSLContext`` is
thread-safe to connect with), built by httpx itself so that ``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` still count.
"""

from __future__ import annotations

import functools
import ssl
from urllib.parse import urlsplit

import httpx

__all__ = ["httpx_verify", "shared_tls_context"]


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process."""
    return httpx.create_ssl_context()


def httpx_verify(base_url: str | None, *, verify: bool = True) -> ssl.SSLContext | bool:
    """``verify`` for an httpx client of ``base_url``: ``False`` when nothing is verified
    (asked for, or a plain ``http://`` URL, where no TLS happens), else the shared context."""
    if not verify:
        return False
    if base_url is not None and urlsplit(base_url).scheme.lower() == "http":
        return False
    return shared_tls_context()
