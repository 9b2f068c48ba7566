"""Stream tokens: what the agent job holds instead of a GitHub OIDC token.

The job that runs the agent has no `id-token: write` (the agent could mint OIDC tokens with it),
yet its output must stream live. So a first job of the workflow run, with OIDC, asks for a stream
token; the agent job gets it as a job output. A stream token posts log chunks and `started` and
`progress` events for its one run, and nothing else: it cannot read the brief or report a plan,
blocker, pull request or completion (the publish job does, with OIDC again).

One token per run, for the newest workflow run attempt that asked (a re-run replaces it; an older
attempt cannot replace a newer one's). It is stored as a SHA-256, compared in constant time, and
stops working when the run ends or after `LIFETIME`, the longest a GitHub-hosted job may run.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from app.agents import runs
from app.agents.events import AgentEvent, Progress, Started
from app.agents.runs import Run
from app.db import engine
from app.github.oidc import TokenRejected
from app.runtime import Runtime

PREFIX = "dst_"
LIFETIME = timedelta(hours=6)
ALLOWED_EVENTS = (Started, Progress)
SCOPE = "a stream token may only post log chunks and `started` or `progress` events"


class StreamTokenRefused(Exception):
    """The run cannot have a stream token now (it ended, or a newer attempt holds one): 409."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def presented(request: Request) -> str | None:
    """The request's bearer credential if it is a stream token."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential.startswith(PREFIX):
        return credential
    return None


async def attempt_of(request: Request, rt: Runtime) -> int:
    """The workflow run attempt of the request's OIDC token (already verified by `auth`).
    Only a GitHub Actions job asks for a stream token: API tokens and stream tokens may not."""
    _, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if presented(request) is not None or "." not in credential:
        raise PermissionDeniedException(
            "stream tokens are issued to the run's GitHub Actions job: send its OIDC token"
        )
    try:
        claims = await rt.oidc.verify(credential)
    except TokenRejected as exc:
        raise NotAuthorizedException(str(exc)) from None
    try:
        return max(int(str(claims.get("run_attempt", 1))), 1)
    except ValueError:
        raise NotAuthorizedException("the token's run_attempt is not a number") from None


async def issue(rt: Runtime, run: Run, run_attempt: int) -> tuple[str, datetime]:
    """A new stream token for `run`, replacing any earlier attempt's; (token, expiry)."""
    if run.state.finished:
        raise StreamTokenRefused(f"run #{run.id} is already {run.state.value}")
    token = PREFIX + secrets.token_urlsafe(32)
    now = rt.clock.now()
    expires_at = now + LIFETIME
    async with engine.connection() as connection:
        stored = await connection.fetchval(
            "INSERT INTO run_stream_token (run_id, run_attempt, token_hash, created_at, "
            "expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id) DO UPDATE SET "
            "run_attempt = EXCLUDED.run_attempt, token_hash = EXCLUDED.token_hash, "
            "created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at "
            "WHERE run_stream_token.run_attempt <= EXCLUDED.run_attempt RETURNING run_id",
            run.id,
            run_attempt,
            digest(token),
            now,
            expires_at,
        )
    if stored is None:
        raise StreamTokenRefused(
            f"a newer attempt of run #{run.id}'s workflow run holds its stream token"
        )
    return token, expires_at


async def authorize(rt: Runtime, run_id: int, token: str) -> Run:
    """The run `token` streams for, if it is that run's live token and the run is active."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT token_hash, expires_at FROM run_stream_token WHERE run_id = $1", run_id
        )
    # Compared in constant time; a missing row compares against a dummy so timing says nothing.
    expected = row["token_hash"] if row is not None else digest(PREFIX)
    if not hmac.compare_digest(expected.encode(), digest(token).encode()) or row is None:
        raise NotAuthorizedException(f"this is not run #{run_id}'s stream token")
    if row["expires_at"] <= rt.clock.now():
        raise NotAuthorizedException(f"run #{run_id}'s stream token has expired")
    run = await runs.get(run_id)
    if run is None or run.state.finished:
        raise NotAuthorizedException(f"run #{run_id} has ended, and its stream token with it")
    return run


def allows(event: AgentEvent) -> bool:
    return isinstance(event, ALLOWED_EVENTS)
