"""What happens to a run after dispatch: agent events, the end of the workflow run, the
watchdog. Database state changes happen at once (the agent's request, the webhook); what they
mean on GitHub (comments, labels) follows in a `runs.effects` job, retried until done."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import msgspec

from app import jobs, queue
from app.agents import gates, plans, pull_requests, qa, reports, runs, status_comment
from app.agents.events import (
    AgentEvent,
    Blocker,
    Completed,
    PlanProposed,
    Progress,
    PullRequestOpened,
    Started,
)
from app.agents.runs import Run, RunState
from app.audit import log as audit
from app.claims import service as claims
from app.db import engine
from app.github import rest
from app.installations import service as installations
from app.issues import repo_config, state
from app.issues.labels import AGENT_PREFIX, Signal, Status
from app.modes import Mode
from app.runtime import Runtime
from app.stream import chunks

log = logging.getLogger(__name__)

# The longest summary kept, like every other text an agent reports (`events.NonEmpty`).
MAX_SUMMARY_CHARS = 200_000

OUTCOME_STATES = {
    "completed": RunState.SUCCEEDED,
    "no_changes_needed": RunState.SUCCEEDED,
    "investigation_complete": RunState.SUCCEEDED,
    "blocked": RunState.BLOCKED,
    "needs_human_decision": RunState.BLOCKED,
    "failed": RunState.FAILED,
}


class RunFinished(Exception):
    """The run already ended; late reports are refused (409)."""


async def apply(rt: Runtime, run: Run, event: AgentEvent) -> Run:
    """Record an agent's event on its run and queue its effects on GitHub."""
    if run.state.finished:
        raise RunFinished(f"run #{run.id} is already {run.state.value}")
    now = rt.clock.now()
    body = msgspec.to_builtins(event)
    kind = body.pop("type")
    async with engine.transaction():
        fields: dict[str, Any] = {"last_seen_at": now}
        if isinstance(event, Started):
            fields.update(state=RunState.RUNNING, started_at=run.started_at or now)
        elif isinstance(event, Progress | PlanProposed) and run.state is RunState.DISPATCHED:
            fields.update(state=RunState.RUNNING, started_at=now)
        elif isinstance(event, Blocker):
            fields.update(blocker_reason=event.reason, blocker_category=event.category)
        elif isinstance(event, PullRequestOpened):
            fields.update(pr_number=event.number, pr_url=event.url)
        elif isinstance(event, Completed):
            fields.update(
                state=OUTCOME_STATES[event.outcome],
                outcome=event.outcome,
                # Kept whole (as far as an agent's text goes); the status comment shows what fits
                # GitHub's limit and links to the rest.
                summary=event.summary[:MAX_SUMMARY_CHARS],
                # Self-reported: never more than the run may spend or turn, so one report
                # cannot spend an installation's day (the cap was passed to the agent).
                cost_usd=min(
                    event.cost_usd, run.cost_cap_usd or rt.settings.max_agent_cost_per_run
                ),
                turns=min(event.turns, run.mode.spec.max_turns),
                finished_at=now,
            )
            if run.mode.spec.posts_report and event.report and event.report.strip():
                fields["report"] = event.report
        run = await runs.update(run.id, **fields)
        await runs.record_event(run.id, kind, body)
        if isinstance(event, Completed):
            await _on_finish(rt, run)
        if not isinstance(event, Progress):
            await queue.enqueue(
                jobs.RUN_EFFECTS, {"run": run.id, "event": kind, **_effect_args(event)}
            )
    return run


def _effect_args(event: AgentEvent) -> dict[str, Any]:
    if isinstance(event, PlanProposed):
        return {"plan": event.body}
    return {}


async def finish(
    rt: Runtime, run: Run, state_: RunState, *, outcome: str, summary: str
) -> Run | None:
    """End a run the agent never closed (workflow ended, cancelled, silent). Idempotent."""
    async with engine.transaction():
        current = await runs.get(run.id, lock=True)
        if current is None or current.state.finished:
            return None
        run = await runs.update(
            run.id, state=state_, outcome=outcome, summary=summary, finished_at=rt.clock.now()
        )
        await _on_finish(rt, run)
        await queue.enqueue(jobs.RUN_EFFECTS, {"run": run.id, "event": "finished"})
    return run


async def _on_finish(rt: Runtime, run: Run) -> None:
    """In the finishing transaction: the cooldown starts and stream viewers hear the end."""
    if run.fingerprint:
        loaded = await repo_config.load(rt, run.installation_id, run.repository)
        hours = gates.limits_for(rt.settings, loaded.config, run.mode).cooldown_hours
        await gates.start_cooldown(run.fingerprint, rt.clock.now() + timedelta(hours=hours))
    await chunks.announce_end(run.id, run.state.value)
    if await installations.is_public(run.repository_id):
        # Anyone could read the link in the status comment: it ends with the run.
        await runs.update(run.id, viewer_key=None)
    await audit.record(
        actor=run.requested_by or "dispatch",
        action="run.finish",
        target=f"{run.repository}#{run.issue_number}",
        repository=run.repository,
        issue_number=run.issue_number,
        installation_id=run.installation_id,
        after={
            "run": run.id,
            "state": run.state.value,
            "outcome": run.outcome,
            "cost_usd": run.cost_usd,
        },
    )


async def effects(rt: Runtime, payload: dict[str, Any]) -> None:
    """The GitHub side of one event: plan comment and labels, blocked label, status comment,
    and on finish the labels of the run's end. Each step is idempotent."""
    run = await runs.get(payload["run"])
    if run is None:
        return
    client = rt.github.installation(run.installation_id)
    kind = payload["event"]
    if kind == "plan":
        await plans.propose(rt, run, payload["plan"])
    elif kind == "blocker":
        await rest.add_label(client, run.repository, run.issue_number, Signal.BLOCKED)
    if run.state.finished:
        if kind in ("completed", "finished"):
            # Only the job of the event that ended the run: jobs of earlier events run late
            # and at the same time, and two would both find no report comment yet.
            run = await reports.publish(rt, run)
            run = await qa.finish_check(rt, run)
        await _finish_labels(rt, client, run)
    await status_comment.publish(rt, run)


async def _finish_labels(rt: Runtime, client: Any, run: Run) -> None:
    holder = await claims.active_on(run.repository_id, run.issue_number)
    if holder is not None:
        # A claim holds the issue (a harness working it, perhaps through this very run): its
        # holder moves the status and its own agent label when it releases the claim.
        if holder.agent != run.agent:
            await rest.remove_label(
                client, run.repository, run.issue_number, f"{AGENT_PREFIX}{run.agent}"
            )
        if run.state is RunState.BLOCKED:
            await rest.add_label(client, run.repository, run.issue_number, Signal.BLOCKED)
        return
    await rest.remove_label(client, run.repository, run.issue_number, f"{AGENT_PREFIX}{run.agent}")
    if run.state is RunState.BLOCKED:
        await rest.add_label(client, run.repository, run.issue_number, Signal.BLOCKED)
        return
    if not run.mode.spec.moves_status:
        return  # a QA run leaves the issue where it was (in review, usually)
    if run.state is RunState.SUCCEEDED and run.mode is Mode.IMPLEMENT and run.pr_number:
        target = Status.IN_REVIEW
    else:
        # Back in the queue: the plan awaits review, or a person decides what comes next.
        target = Status.READY
    await state.move_to(
        client,
        rt,
        run.repository,
        run.issue_number,
        target,
        actor=await rt.github.bot_login(),
        reason=f"run #{run.id} {run.state.value}",
        installation_id=run.installation_id,
    )


async def watchdog(rt: Runtime) -> int:
    """Mark runs nobody has heard from for RUN_SILENCE_TIMEOUT_MINUTES as timed out and cancel
    their workflow runs."""
    silence = rt.settings.run_silence_timeout_minutes
    cutoff = rt.clock.now() - timedelta(minutes=silence)
    count = 0
    for run in await runs.silent_since(cutoff):
        finished = await finish(
            rt,
            run,
            RunState.TIMED_OUT,
            outcome="failed",
            summary=f"no report from the agent for {silence:g} minutes",
        )
        if finished is not None:
            count += 1
            await cancel_workflow_run(rt, finished)
    return count


async def cancel_workflow_run(rt: Runtime, run: Run) -> bool:
    if run.workflow_run_id is None:
        return False
    client = rt.github.installation(run.installation_id)
    return await rest.cancel_workflow_run(client, run.repository, run.workflow_run_id)


async def is_runs_pull(rt: Runtime, run: Run, number: int) -> bool:
    """Whether GitHub says pull request `number` comes from the run's own branch."""
    client = rt.github.installation(run.installation_id)
    pull = await rest.get_pull(client, run.repository, number)
    return pull is not None and pull_requests.is_run_branch(run, pull.get("head") or {})


async def seen(rt: Runtime, run: Run) -> None:
    """The agent is alive (it just sent output): keep the watchdog away."""
    await runs.mark_seen(run.id, rt.clock.now())
