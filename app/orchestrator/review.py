"""Reviewing a mission's proposal: what `/dispatch approve` and `/dispatch reject` do on a
mission issue, and planning again when the mission issue is edited.

Approval binds one revision: the one on the table when the approval was sent, planned from the
mission issue's text as it still is (an edit of the issue, or a newer proposal, makes an older
revision unapprovable). Approving queues the revision's execution (`execution.py`); rejecting
plans the mission again with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app import jobs, queue
from app.db import engine
from app.github import markdown, rest
from app.orchestrator import asking, missions, revisions, status
from app.orchestrator import proposal as proposals
from app.orchestrator.missions import Mission, MissionState
from app.orchestrator.revisions import Proposal, ProposalState
from app.runtime import Runtime


@dataclass(frozen=True)
class Answer:
    """What the verb replies: `ok=False` is a refusal (😕 and the reason)."""

    ok: bool
    reply: str


async def for_issue(repository_id: int, issue_number: int) -> Mission | None:
    """The issue's latest mission: an issue with one is a mission issue, where `approve` and
    `reject` review the mission's proposal rather than an agent's plan."""
    return await missions.latest_for_issue(repository_id, issue_number)


# --- approve


async def approve(
    rt: Runtime,
    mission: Mission,
    *,
    by: str,
    revision: str | None,
    sent_at: datetime | None,
    allow_self_approval: bool,
) -> Answer:
    current = await revisions.latest_proposal(mission.id)
    if mission.state in (MissionState.PLANNING, MissionState.WAITING):
        if revision and current is not None and revision == current.revision:
            return Answer(
                False,
                f"revision `{revision}` no longer applies: Claude is planning this mission "
                "again. Approve the new proposal once it is posted.",
            )
        return Answer(
            False, "Claude is still planning this mission; approve its proposal once it is posted."
        )
    if current is None:
        why = f" ({mission.error})" if mission.error else ""
        return Answer(
            False,
            f"mission #{mission.id} has no proposal to approve: it {mission.state.value}{why}.",
        )
    if revision and revision != current.revision:
        older = await revisions.proposal_by_revision(mission.id, revision)
        if older is None:
            return Answer(
                False,
                f"mission #{mission.id} has no revision {markdown.code_span(revision[:40])}; the "
                f"current proposal is revision `{current.revision}`.",
            )
        return Answer(
            False,
            f"revision `{revision}` is stale: the current proposal is revision "
            f"`{current.revision}`. Read it, then `/dispatch approve {current.revision}`.",
        )
    if current.state is ProposalState.APPROVED:
        # A retried approval: resume (or confirm) the execution; items are never done twice.
        await _enqueue_execution(current)
        return Answer(
            True,
            f"Revision `{current.revision}` was already approved by {current.decided_by}; "
            "nothing is created or dispatched twice.",
        )
    if current.state is not ProposalState.PROPOSED:
        return Answer(
            False,
            f"revision `{current.revision}` was {current.state.value}; there is no proposal "
            "waiting for review.",
        )
    requester = mission.requested_by
    if not allow_self_approval and requester and requester.lower() == by.lower():
        return Answer(
            False,
            "you asked for this mission, so someone else approves it (or set "
            "`plans.allow_self_approval: true` in `.github/dispatch.yml`).",
        )
    if sent_at is not None and sent_at < current.created_at:
        return Answer(
            False,
            f"your approval was sent before revision `{current.revision}` was proposed. Read "
            f"it, then `/dispatch approve {current.revision}`.",
        )
    client = rt.github.installation(mission.installation_id)
    issue = await rest.get_issue(client, mission.repository, mission.issue_number)
    if (
        proposals.issue_hash(issue.get("title") or "", issue.get("body") or "")
        != current.issue_hash
    ):
        await replan(rt, mission, "The mission issue was edited after this revision was proposed.")
        return Answer(
            False,
            f"the mission issue was edited after revision `{current.revision}` was proposed, so "
            "it no longer applies. Claude is planning again from the new text.",
        )
    async with engine.transaction():
        decided = await revisions.decide(current.id, ProposalState.APPROVED, by=by)
        if decided is not None:
            await _enqueue_execution(decided)
    if decided is None:
        return Answer(False, "there is no proposal waiting for review any more.")
    await missions.record_audit(
        mission,
        actor=by,
        action="mission.approve",
        after={"mission": mission.id, "revision": decided.revision},
    )
    count = len(decided.proposal["items"])
    await status.publish(
        rt,
        await missions.get(mission.id) or mission,
        f"✅ Revision `{decided.revision}` approved by {by}: carrying out its {count} "
        f"item{'s' if count != 1 else ''}…",
    )
    return Answer(
        True,
        f"Approved revision `{decided.revision}`: Dispatch creates and dispatches exactly what it "
        "lists; the mission's status comment shows each item.",
    )


async def _enqueue_execution(proposal: Proposal) -> None:
    await queue.enqueue(
        jobs.EXECUTE_MISSION, {"proposal": proposal.id}, dedupe_key=f"mission-execute:{proposal.id}"
    )


# --- reject and replan


async def reject(rt: Runtime, mission: Mission, *, by: str, reason: str) -> Answer:
    current = await revisions.latest_proposal(mission.id)
    if current is None or current.state is not ProposalState.PROPOSED:
        if mission.state in (MissionState.PLANNING, MissionState.WAITING):
            return Answer(
                False, "Claude is still planning this mission; there is nothing to reject yet."
            )
        return Answer(False, "there is no mission proposal waiting for review on this issue.")
    async with engine.transaction():
        decided = await revisions.decide(current.id, ProposalState.REJECTED, by=by, feedback=reason)
        replanned = await missions.plan_again(mission.id, feedback=reason) if decided else None
        if replanned is not None:
            await asking.enqueue_planning(replanned)
    if decided is None or replanned is None:
        return Answer(False, "there is no mission proposal waiting for review any more.")
    await missions.record_audit(
        mission,
        actor=by,
        action="mission.reject",
        after={"mission": mission.id, "revision": current.revision},
        reason=reason,
    )
    await status.publish(
        rt, replanned, status.replanning(f"{by} rejected revision `{current.revision}`.")
    )
    return Answer(
        True,
        f"Rejected revision `{current.revision}`. Claude is planning again with your reason.",
    )


async def replan(rt: Runtime, mission: Mission, why: str) -> Mission | None:
    """Plan a live mission again from scratch (the issue changed under it)."""
    async with engine.transaction():
        replanned = await missions.plan_again(mission.id, feedback=None)
        if replanned is not None:
            await asking.enqueue_planning(replanned)
    if replanned is not None:
        await status.publish(rt, replanned, status.replanning(why))
    return replanned


async def on_issue_edited(
    rt: Runtime, repository_id: int, number: int, title: str, body: str
) -> None:
    """An edit of a mission issue's title or body invalidates what was planned from it."""
    mission = await missions.live_for_issue(repository_id, number)
    if mission is None or mission.state is MissionState.EXECUTING:
        return
    if mission.state is MissionState.PROPOSED:
        current = await revisions.latest_proposal(mission.id)
        if current is not None and proposals.issue_hash(title, body) == current.issue_hash:
            return  # Dispatch's own task list, or an edit that changed nothing that counts
    await replan(rt, mission, "The mission issue was edited.")
