"""How a planning ends, in exactly one of: a validated proposal posted on the issue; a wait
(Anthropic overloaded, rate limited, failing or unreachable: the job is queued again with
backoff and the status comment says so); a refusal by the daily cost budget; or a failure that
says why (no key, a refused key or model, an unknown tool, invalid tool input, an invalid
proposal, no proposal within the rounds, Anthropic still down after every attempt). Never a
partial proposal, and never anything created or dispatched. A failure and a refusal raise
`Stop`, which ends the planning job.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from app.audit import log as audit
from app.db import engine
from app.github import addresses, markdown, rest
from app.orchestrator import asking, grounding, missions, revisions, status, tool_calls
from app.orchestrator import proposal as proposals
from app.orchestrator.claude import Unavailable
from app.orchestrator.missions import Mission, MissionState
from app.orchestrator.proposal import InvalidProposal
from app.runtime import Runtime

log = logging.getLogger(__name__)


class Stop(Exception):
    """End this job: the mission failed (and was told so) or moved on without it."""


async def wait(rt: Runtime, mission: Mission, exc: Unavailable) -> None:
    """Anthropic cannot answer now: queue the planning again with backoff (honouring its
    `retry-after`), or give up after `ORCHESTRATOR_ATTEMPTS`."""
    settings = rt.settings
    attempt = mission.attempts + 1
    if attempt >= settings.orchestrator_attempts:
        await fail(
            rt,
            mission,
            f"{exc.why}, and still after {attempt} attempts",
        )
    delay = min(
        max(settings.orchestrator_retry_base_seconds * 2 ** (attempt - 1), exc.retry_after or 0),
        settings.orchestrator_retry_max_seconds,
    )
    async with engine.transaction():
        updated = await missions.update_if(
            mission.id,
            mission.generation,
            state=MissionState.WAITING,
            attempts=attempt,
            error=exc.why,
        )
        if updated is not None:
            await asking.enqueue_planning(updated, attempt=attempt, delay=delay)
    if updated is None:
        return
    log.info("mission waits for Anthropic", extra={"mission": mission.id, "why": exc.why})
    await status.publish(
        rt, updated, status.waiting(exc.why, delay, attempt, settings.orchestrator_attempts)
    )


async def fail(rt: Runtime, mission: Mission, why: str) -> NoReturn:
    """End the mission with a failure that says why; raises Stop."""
    updated = await missions.update_if(
        mission.id, mission.generation, state=MissionState.FAILED, error=why
    )
    if updated is not None:
        log.info("mission failed", extra={"mission": mission.id, "why": why})
        await status.publish(rt, updated, status.failed(why, updated))
        await missions.record_audit(
            mission,
            actor="dispatch",
            action="mission.fail",
            after={"mission": mission.id, "rounds": updated.rounds, "cost_usd": updated.cost_usd},
            outcome=audit.Outcome.FAILED,
            reason=why,
        )
    raise Stop


async def refuse(rt: Runtime, mission: Mission, reason: str) -> NoReturn:
    updated = await missions.update_if(
        mission.id, mission.generation, state=MissionState.REFUSED, error=reason
    )
    if updated is not None:
        await status.publish(rt, updated, status.refused(reason))
        await missions.record_audit(
            mission,
            actor="dispatch",
            action="mission.refuse",
            after={"mission": mission.id},
            outcome=audit.Outcome.REFUSED,
            reason=reason,
        )
    raise Stop


async def take_proposal(rt: Runtime, scope: tool_calls.Scope, mission: Mission, raw: Any) -> None:
    """Validate the proposal, check it against the repository, post it; or fail the mission
    with every problem found (a proposal is taken whole or not at all)."""
    try:
        parsed = proposals.parse(raw)
        checked = await grounding.check(rt, scope, mission, parsed)
    except InvalidProposal as exc:
        listed = "; ".join(markdown.inline_text(p, 200) for p in exc.problems[:6])
        await fail(rt, mission, f"Dispatch refused Claude's proposal ({listed})")
    client = scope.client
    issue = await rest.get_issue(client, mission.repository, mission.issue_number)
    bound = proposals.issue_hash(issue.get("title") or "", issue.get("body") or "")
    revision = proposals.revision_of(checked, bound)
    body = proposals.render(
        checked,
        proposals.RenderContext(
            revision=revision,
            model=rt.settings.orchestrator_model,
            rounds=mission.rounds,
            cost_usd=mission.cost_usd,
            allowed_hosts=addresses.github_hosts(rt.settings.github_web_url),
            embeddings=rt.embeddings is not None,
        ),
    )
    # Posted before it is recorded: a retry finds the comment by its marker, and the recorded
    # proposal always has its comment.
    comment_id = await rest.upsert_marked_comment(
        client,
        mission.repository,
        mission.issue_number,
        f"mission-proposal:{mission.id}:{revision}",
        body,
        bot_login=await rt.github.bot_login(),
    )
    stored = await revisions.add_proposal(mission, revision, checked, bound)
    if stored is None:
        return  # a newer planning started; its proposal will replace this one
    await revisions.set_proposal_comment(stored.id, comment_id)
    mission = await missions.get(mission.id) or mission
    url = _comment_url(rt, mission, comment_id)
    await status.publish(rt, mission, status.proposed(mission, revision, url))
    await missions.record_audit(
        mission,
        actor="dispatch",
        action="mission.propose",
        after={
            "mission": mission.id,
            "revision": revision,
            "items": len(checked["items"]),
            "rounds": mission.rounds,
            "cost_usd": round(mission.cost_usd, 6),
        },
    )


def _comment_url(rt: Runtime, mission: Mission, comment_id: int) -> str:
    return (
        f"{rt.settings.github_web_url}/{mission.repository}/issues/{mission.issue_number}"
        f"#issuecomment-{comment_id}"
    )
