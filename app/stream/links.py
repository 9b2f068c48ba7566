"""Viewer links: signed, expiring, scoped to one run and to that run's viewer key. Changing or
clearing the key (Dispatch clears it when a public repository's run ends) revokes every link
handed out for the run."""

from __future__ import annotations

import hashlib

from app.runtime import Runtime
from app.signing import InvalidToken

PURPOSE = "stream"


def subject(run_id: int, key: str) -> str:
    # The key itself never travels: only a digest of it, bound into the signed token.
    return f"run:{run_id}:{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def viewer_token(rt: Runtime, run_id: int, key: str, *, days: float | None = None) -> str:
    lifetime = (days if days is not None else rt.settings.stream_token_days) * 86400
    return rt.signer.sign(PURPOSE, subject(run_id, key), lifetime)


def viewer_url(rt: Runtime, run_id: int, key: str, *, days: float | None = None) -> str:
    token = viewer_token(rt, run_id, key, days=days)
    return f"{rt.settings.dispatch_url}/runs/{run_id}?token={token}"


def opens(rt: Runtime, token: str | None, run_id: int, key: str | None) -> bool:
    """Whether `token` is a live viewer link for this run under its current key."""
    if not token or not key:
        return False
    try:
        return rt.signer.verify(PURPOSE, token) == subject(run_id, key)
    except InvalidToken:
        return False
