"""Ending a claim: the labels its outcome means, then the row and the audit entry, and the cached
issue brought in line afterwards.

`abandoned` → `status/ready`; `blocked` → `dispatch/blocked` and the reason as a comment (the
status stays, a person decides); `done` → `status/in-review` with a pull request, `status/done`
without. Each removes the agent's label. A `pr_follow_up` claim's pull request has no status:
only the agent's label comes off (`blocked` adds `dispatch/blocked` and the reason, as for an
issue)."""

from __future__ import annotations

import logging

from app.audit import log as audit
from app.claims.follow_ups import PR_FOLLOW_UP
from app.claims.records import Claim, ClaimState, Outcome
from app.db import engine
from app.github import addresses, markdown, rest
from app.issues import cache, state
from app.issues.labels import Signal, Status
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def end(
    rt: Runtime,
    claim: Claim,
    new_state: ClaimState,
    outcome: Outcome,
    *,
    reason: str | None,
    pr_url: str | None,
    by: str,
) -> Claim:
    """Inside the caller's transaction (the claim row locked): the labels the outcome means,
    then the row and the audit entry. A failure at GitHub rolls the whole end back, so the claim
    stays active and the next attempt (the holder's retry, the next expiry pass) does it again;
    every label step is idempotent."""
    client = rt.github.installation(claim.installation_id)
    repository, number = claim.repository, claim.issue_number
    target: Status | None = None
    if outcome is Outcome.BLOCKED:
        pass
    elif claim.kind == PR_FOLLOW_UP:
        pass  # a pull request has no status: only the agent's label comes off
    elif outcome is Outcome.ABANDONED:
        target = Status.READY
    elif outcome is Outcome.DONE:
        target = Status.IN_REVIEW if pr_url else Status.DONE
    if outcome is Outcome.BLOCKED:
        await rest.add_label(client, repository, number, Signal.BLOCKED)
        await rest.upsert_marked_comment(
            client,
            repository,
            number,
            f"claim:{claim.id}:blocked",
            _blocked_comment(rt, claim, reason or ""),
            bot_login=await rt.github.bot_login(),
        )
    if target is not None:
        # An issue someone finished meanwhile (closed: `status/done`) stays finished.
        await state.move_to(
            client,
            rt,
            repository,
            number,
            target,
            actor=by,
            reason=f"claim #{claim.id} {new_state.value} ({outcome.value})",
            installation_id=claim.installation_id,
            unless=Status.DONE,
        )
    await rest.remove_label(client, repository, number, claim.label)
    now = rt.clock.now()
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "UPDATE claim SET state = $2, outcome = $3, reason = $4, pr_url = $5, ended_at = $6, "
            "ended_by = $7 WHERE id = $1 RETURNING *",
            claim.id,
            new_state.value,
            outcome.value,
            reason,
            pr_url,
            now,
            by,
        )
    await audit.record(
        actor=by,
        action=f"claim.{'expire' if new_state is ClaimState.EXPIRED else 'release'}",
        repository=repository,
        issue_number=number,
        installation_id=claim.installation_id,
        before={"claim": claim.id, "agent": claim.agent},
        after={"outcome": outcome.value, "status": target.value if target else None},
        reason=reason,
    )
    return Claim.from_row(row)


def _blocked_comment(rt: Runtime, claim: Claim, reason: str) -> str:
    text = markdown.agent_markdown(reason, addresses.github_hosts(rt.settings.github_web_url))
    if claim.kind == PR_FOLLOW_UP:
        return (
            f"### 🚧 Blocked · `{claim.label}`\n\n"
            f"The agent that claimed this pull request's review feedback (claim #{claim.id}) "
            f"stopped and released it:\n\n{text}\n\n---\nA person decides what comes next: "
            f"remove `{Signal.BLOCKED.value}` and request changes again to put it back in the "
            "queue."
        )
    return (
        f"### 🚧 Blocked · `{claim.label}`\n\n"
        f"The agent that claimed this issue (claim #{claim.id}) stopped and released it:\n\n"
        f"{text}\n\n---\nA person decides what comes next: remove `{Signal.BLOCKED.value}` and "
        f"move the issue to `{Status.READY.value}` to put it back in the queue."
    )


async def recache(rt: Runtime, claim: Claim) -> None:
    """Bring the cached copy in line with the labels just changed, so the issue is claimable
    again at once when it went back to the queue (the webhooks would do it a moment later)."""
    if claim.kind == PR_FOLLOW_UP:
        return  # follow-ups are found at GitHub, not in the issue cache
    try:
        await cache.refresh(
            rt, claim.installation_id, claim.repository_id, claim.repository, claim.issue_number
        )
    except Exception:
        log.warning(
            "could not re-cache a released issue; its webhooks will",
            extra={"repository": claim.repository, "issue": claim.issue_number},
            exc_info=True,
        )
