"""Verifying GitHub Actions OIDC tokens: RS256 only, keys from the issuer's JWKS (fetched
asynchronously and cached; refetched at most once a minute when an unknown `kid` shows up),
our own audience, the issuer, expiry, and the claims Dispatch binds runs to."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from app.github import tls

JWKS_TTL = 3600.0
REFETCH_INTERVAL = 60.0
# A failing issuer is asked again only after this long; meanwhile tokens get a quick 401
# instead of each waiting for its own fetch.
FAILURE_BACKOFF = 30.0
FETCH_TIMEOUT = 5.0
REQUIRED = ["exp", "iat", "iss", "aud", "repository_id", "run_id"]


class TokenRejected(Exception):
    pass


class OIDCVerifier:
    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._failure = ""
        self._lock: asyncio.Lock | None = None

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"not a JWT: {exc}") from None
        if header.get("alg") != "RS256":
            raise TokenRejected("only RS256 tokens are accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("the token names no signing key (kid)")
        key = await self._key(kid)
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=30,
                options={"require": REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"the token's audience is not {self.audience}") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token was not issued by GitHub Actions") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {exc}") from None

    async def _key(self, kid: str) -> PyJWK:
        now = time.monotonic()
        stale = now - self._fetched_at > JWKS_TTL
        if kid in self._keys and not stale:
            return self._keys[kid]
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            wanted = kid not in self._keys or now - self._fetched_at > JWKS_TTL
            # An unknown kid may be a forgery: refetch at most once a minute for it.
            allowed = now - self._fetched_at >= REFETCH_INTERVAL or not self._keys
            failing = self._failed_at is not None and now - self._failed_at < FAILURE_BACKOFF
            if wanted and allowed and not failing:
                await self._fetch()
            elif wanted and failing and not self._keys:
                raise TokenRejected(f"the issuer's keys are unavailable: {self._failure}")
        if kid not in self._keys:
            raise TokenRejected("the token's signing key is not published by the issuer")
        return self._keys[kid]

    async def _fetch(self) -> None:
        url = f"{self.issuer}/.well-known/jwks"
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, verify=tls.context()) as client:
                response = await client.get(url)
                response.raise_for_status()
                document = response.json()
            keys = _keys_of(document)
        except (httpx.HTTPError, ValueError) as exc:
            self._failed_at = time.monotonic()
            self._failure = str(exc)[:200] or type(exc).__name__
            if not self._keys:
                raise TokenRejected(f"cannot fetch the issuer's keys: {self._failure}") from None
            return  # keep the keys we have
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._failed_at = None


def _keys_of(document: Any) -> dict[str, PyJWK]:
    """The RSA keys of a JWKS document; entries that are not usable keys are skipped, and a
    document with none is an error (ValueError)."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the JWKS document has no list of keys")
    keys: dict[str, PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str):
            continue
        try:
            keys[kid] = PyJWK(entry, algorithm="RS256")
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
    if not keys:
        raise ValueError("the JWKS document has no usable RSA key")
    return keys
