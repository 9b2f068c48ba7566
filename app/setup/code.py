"""The one-time setup code (the model: Jenkins' initial admin password). While no GitHub App is
configured, whoever can read the server's output or its data directory — the operator — holds a
code that `/setup` asks for before it registers anything, so the first stranger to find an
unconfigured server cannot make it theirs."""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from pathlib import Path

CODE_FILE = "setup-code"


def _path(data_dir: Path) -> Path:
    return data_dir / CODE_FILE


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def ensure(data_dir: Path) -> str:
    """The setup code, made (100 random bits, mode 0600) if there is none yet."""
    path = _path(data_dir)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    raw = base64.b32encode(secrets.token_bytes(15)).decode()[:20]
    code = "-".join(raw[i : i + 5] for i in range(0, 20, 5))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(code + "\n")
    return code


def matches(data_dir: Path, given: str) -> bool:
    """Constant-time comparison with the stored code (dashes, spaces and case do not matter)."""
    try:
        expected = _path(data_dir).read_text().strip()
    except FileNotFoundError:
        return False
    return hmac.compare_digest(_normalise(expected).encode(), _normalise(given).encode())


def discard(data_dir: Path) -> None:
    """Once the App is registered the code opens nothing; remove it."""
    _path(data_dir).unlink(missing_ok=True)
