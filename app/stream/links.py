"""Viewer links: signed, expiring, scoped to one run."""

from __future__ import annotations

from app.runtime import Runtime

PURPOSE = "stream"


def subject(run_id: int) -> str:
    return f"run:{run_id}"


def viewer_token(rt: Runtime, run_id: int) -> str:
    return rt.signer.sign(PURPOSE, subject(run_id), rt.settings.stream_token_days * 86400)


def viewer_url(rt: Runtime, run_id: int) -> str:
    return f"{rt.settings.dispatch_url}/runs/{run_id}?token={viewer_token(rt, run_id)}"
