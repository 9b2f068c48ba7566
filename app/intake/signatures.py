"""Constant-time verification of webhook signatures."""

from __future__ import annotations

import hashlib
import hmac


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` over the raw body, keyed with the webhook secret."""
    if not header:
        return False
    return hmac.compare_digest(github_signature(secret, body), header.strip())


def sentry_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_sentry(secret: str, body: bytes, header: str | None) -> bool:
    """`Sentry-Hook-Signature: <hex>`: HMAC-SHA256 of the raw body with the client secret."""
    if not header:
        return False
    return hmac.compare_digest(sentry_signature(secret, body), header.strip())


def verify_bearer(expected: str, header: str | None) -> bool:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(expected.encode(), token.strip().encode())
