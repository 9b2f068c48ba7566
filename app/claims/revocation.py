"""Claims people end: a person removing the `agent/<name>` label, or closing the issue (or the
pull request of a `pr_follow_up` claim), ends its claim as `revoked` (nothing else is touched:
they are taking it over)."""

from __future__ import annotations

from app.audit import log as audit
from app.claims.records import Claim
from app.db import engine
from app.events import Event, is_own_change
from app.github import rest
from app.issues.labels import AGENT_PREFIX
from app.runtime import Runtime


async def on_unlabeled(event: Event, rt: Runtime) -> None:
    """A person removed the agent's label from a claimed issue: the claim ends (they take over;
    no other label moves)."""
    label = (event.payload.get("label") or {}).get("name") or ""
    if not label.startswith(AGENT_PREFIX) or await is_own_change(event, rt):
        return  # not an agent's label, or Dispatch's own release removed it
    await _revoke(event, rt, label, reason=f"{event.sender or 'someone'} removed {label}")


async def on_closed(event: Event, rt: Runtime) -> None:
    """A claimed issue (or pull request) was closed: the claim ends and the agent's label comes
    off (closing already means `status/done`)."""
    if await is_own_change(event, rt):
        return
    what = "pull request" if "pull_request" in event.payload else "issue"
    claim = await _revoke(event, rt, None, reason=f"{event.sender or 'someone'} closed the {what}")
    if claim is not None and event.installation_id is not None:
        client = rt.github.installation(event.installation_id)
        await rest.remove_label(client, claim.repository, claim.issue_number, claim.label)


async def _revoke(event: Event, rt: Runtime, label: str | None, *, reason: str) -> Claim | None:
    """End the issue's active claim (if `label` is given, only that agent's) as `revoked`."""
    issue = event.payload.get("issue") or event.payload.get("pull_request") or {}
    repository = event.payload.get("repository") or {}
    if "id" not in repository:
        return None
    async with engine.transaction():
        async with engine.connection() as connection:
            found = await connection.fetchrow(
                "SELECT * FROM claim WHERE repository_id = $1 AND issue_number = $2 "
                "AND state = 'active' FOR UPDATE",
                repository["id"],
                issue.get("number"),
            )
        if found is None:
            return None
        claim = Claim.from_row(found)
        if label is not None and claim.label != label:
            return None
        person = event.sender or "someone"
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE claim SET state = 'revoked', ended_at = $2, ended_by = $3 WHERE id = $1",
                claim.id,
                rt.clock.now(),
                person,
            )
        await audit.record(
            actor=person,
            action="claim.revoke",
            repository=claim.repository,
            issue_number=claim.issue_number,
            installation_id=claim.installation_id,
            before={"claim": claim.id, "agent": claim.agent, "token": claim.token_name},
            reason=reason,
            delivery=event.delivery,
        )
    return claim
