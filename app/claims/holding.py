"""What a claim's holder does with it: check it is theirs and still active, renew its lease
(`CLAIM_LEASE_MINUTES`, 30, from now) and release it with an outcome (how an outcome moves the
labels is `app.claims.ending`). Every change is audited with the token's name as the actor."""

from __future__ import annotations

from datetime import timedelta

from litestar.exceptions import NotFoundException, PermissionDeniedException

from app.audit import log as audit
from app.claims.ending import end, recache
from app.claims.records import Claim, ClaimState, Outcome, get
from app.db import engine
from app.github import addresses
from app.runtime import Runtime
from app.tokens import service as tokens
from app.tokens.guard import require_scope
from app.tokens.service import ApiToken
from app.web.errors import conflict, github_trouble, invalid


async def held(claim_id: int, token: ApiToken) -> Claim:
    """The active claim `claim_id` of this token: 404 unknown, 403 another token's, 409 ended."""
    claim = await get(claim_id)
    _check_holder(claim_id, claim, token)
    assert claim is not None
    if claim.state is not ClaimState.ACTIVE:
        raise conflict(_ended(claim))
    return claim


def _check_holder(claim_id: int, claim: Claim | None, token: ApiToken) -> None:
    if claim is None:
        raise NotFoundException(f"no claim {claim_id}")
    if claim.token_id != token.id:
        raise PermissionDeniedException(
            f"claim {claim_id} belongs to another token; only its holder may renew or release it"
        )


def _ended(claim: Claim) -> str:
    when = f" at {claim.ended_at:%Y-%m-%d %H:%M:%S} UTC" if claim.ended_at else ""
    how = {
        ClaimState.RELEASED: f"was released ({claim.outcome.value if claim.outcome else '?'})",
        ClaimState.EXPIRED: "expired (no heartbeat before its lease ran out)",
        ClaimState.REVOKED: f"was ended by {claim.ended_by or 'a person'} (who removed "
        f"{claim.label} or closed the issue)",
    }.get(claim.state, claim.state.value)
    return f"claim {claim.id} {how}{when}; claim the next issue instead"


async def heartbeat(rt: Runtime, token: ApiToken, claim_id: int) -> Claim:
    """Extend the lease by CLAIM_LEASE_MINUTES from now."""
    require_scope(token, tokens.AGENT)
    now = rt.clock.now()
    async with engine.transaction():
        claim = await get(claim_id, lock=True)
        _check_holder(claim_id, claim, token)
        assert claim is not None
        if claim.state is not ClaimState.ACTIVE:
            raise conflict(_ended(claim))
        if claim.lease_expires_at <= now:
            raise conflict(
                f"claim {claim.id}'s lease ran out at {claim.lease_expires_at:%Y-%m-%d %H:%M:%S} "
                "UTC; the issue goes back to the queue. Release it, or claim the next issue"
            )
        expires = now + timedelta(minutes=rt.settings.claim_lease_minutes)
        async with engine.connection() as connection:
            row = await connection.fetchrow(
                "UPDATE claim SET heartbeat_at = $2, lease_expires_at = $3 WHERE id = $1 "
                "RETURNING *",
                claim.id,
                now,
                expires,
            )
        await audit.record(
            actor=token.actor,
            action="claim.heartbeat",
            repository=claim.repository,
            issue_number=claim.issue_number,
            installation_id=claim.installation_id,
            after={"claim": claim.id, "lease_expires_at": expires.isoformat()},
        )
    return Claim.from_row(row)


async def release(
    rt: Runtime,
    token: ApiToken,
    claim_id: int,
    outcome: str,
    *,
    reason: str | None = None,
    pr_url: str | None = None,
) -> Claim:
    """End a claim with the holder's outcome and move the issue to match it."""
    require_scope(token, tokens.AGENT)
    try:
        result = Outcome(outcome)
    except ValueError:
        raise invalid("outcome", "`outcome` must be one of done, blocked, abandoned") from None
    reason = (reason or "").strip() or None
    if result is Outcome.BLOCKED and reason is None:
        raise invalid("reason", "a blocked release needs a `reason`: what a person must do")
    if pr_url is not None:
        # Kept as the link would be written (nothing in it can end a Markdown link).
        pr_url = addresses.safe_link(pr_url, addresses.github_hosts(rt.settings.github_web_url))
        if pr_url is None:
            raise invalid(
                "pr_url", "`pr_url` must be the https address of a pull request on GitHub"
            )
    with github_trouble("releasing the claim (it is still yours)"):
        async with engine.transaction():
            claim = await get(claim_id, lock=True)
            _check_holder(claim_id, claim, token)
            assert claim is not None
            if claim.state is not ClaimState.ACTIVE:
                raise conflict(_ended(claim))
            ended = await end(
                rt, claim, ClaimState.RELEASED, result, reason=reason, pr_url=pr_url, by=token.actor
            )
    await recache(rt, ended)
    return ended
