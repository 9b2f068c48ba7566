"""Signed, expiring tokens (HMAC-SHA256 with `DISPATCH_SECRET_KEY`) for links Dispatch hands
out: the `/setup` state, run-stream viewer links. A token names its purpose, so one minted for a
stream cannot open anything else.

With no `DISPATCH_SECRET_KEY`, a random key is generated once into the data directory (0600);
replicas that share links must share the key through the environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from app.config import ConfigError, Settings
from app.logs import register_secret

KEY_FILE = "secret-key"


def load_secret_key(settings: Settings) -> bytes:
    if settings.dispatch_secret_key:
        key = settings.dispatch_secret_key
    else:
        path: Path = settings.dispatch_data_dir / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        key = path.read_text().strip()
        if len(key) < 32:
            raise ConfigError(
                f"{path} holds a secret key of {len(key)} characters; it needs at least 32 "
                "(delete the file to have one generated, or set DISPATCH_SECRET_KEY)"
            )
    register_secret(key)
    return key.encode()


class InvalidToken(Exception):
    pass


class Signer:
    def __init__(self, key: bytes, now: Callable[[], float] = time.time) -> None:
        """`now`: the time in Unix seconds (the runtime's clock, which tests move)."""
        self._key = key
        self._now = now

    def sign(self, purpose: str, subject: str, ttl_seconds: float) -> str:
        body = msgspec.json.encode(
            {"p": purpose, "s": subject, "e": int(self._now() + ttl_seconds)}
        )
        encoded = _b64(body)
        return f"{encoded}.{self._mac(encoded)}"

    def verify(self, purpose: str, token: str) -> str:
        """The token's subject, if it is authentic, unexpired and minted for `purpose`."""
        encoded, _, mac = token.partition(".")
        given = mac.encode("utf-8", "surrogateescape")
        if not mac or not hmac.compare_digest(self._mac(encoded).encode(), given):
            raise InvalidToken("bad signature")
        try:
            claims = msgspec.json.decode(_unb64(encoded))
        except (ValueError, msgspec.DecodeError):
            raise InvalidToken("malformed") from None
        if claims.get("p") != purpose:
            raise InvalidToken("wrong purpose")
        if claims.get("e", 0) < self._now():
            raise InvalidToken("expired")
        return str(claims.get("s"))

    def _mac(self, encoded: str) -> str:
        return _b64(
            hmac.new(self._key, encoded.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
