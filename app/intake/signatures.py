"""Constant-time verification of webhook signatures."""

from __future__ import annotations

import hashlib
import hmac


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    """Constant-time, as bytes: a header may carry any characters, and comparing non-ASCII
    `str`s raises instead of answering False."""
    return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "surrogateescape"))


def verify_github(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` over the raw body, keyed with the webhook secret."""
    if not header:
        return False
    return _same(github_signature(secret, body), header)


def sentry_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_sentry(secret: str, body: bytes, header: str | None) -> bool:
    """`Sentry-Hook-Signature: <hex>`: HMAC-SHA256 of the raw body with the client secret."""
    if not header:
        return False
    return _same(sentry_signature(secret, body), header)


def verify_bearer(expected: str, header: str | None) -> bool:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return _same(expected, token)
