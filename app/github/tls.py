"""One TLS context for every HTTP client Dispatch opens (GitHub, the OIDC issuer): building one
reads the CA bundle, about 20 ms each time, and they are all the same."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CAs, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), once."""
    return httpx.create_ssl_context()
