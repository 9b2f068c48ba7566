"""What happens to a run after dispatch: agent events, the end of the workflow run, the
watchdog. Database state changes happen at once (the agent's request, the webhook); what they
mean on GitHub (comments, labels) follows in a `runs.effects` job, retried until done."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec

from app import jobs, queue
from app.agents import (
    follow_up_links,
    gates,
    plans,
    pull_requests,
    qa,
    reports,
    run_events,
    run_liveness,
    runs,
    spawn_limits,
    status_comment,
)
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
from app.claims import records as claims
from app.db import engine
from app.github import rest
from app.installations import service as installations
from app.issues import repo_config, state
from app.issues.labels import AGENT_PREFIX, Signal, Status
from app.logs import scrub_credentials
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
    """The run already ended, or the report comes from an attempt a newer one superseded:
    late reports are refused (409)."""


class AttemptRefused(Exception):
    """A new attempt of a finished run's workflow run may not run it again (409)."""


async def apply(rt: Runtime, run: Run, event: AgentEvent, *, attempt: int | None = None) -> Run:
    """Record an agent's event on its run and queue its effects on GitHub. With `attempt`, only
    while that is still the run's attempt."""
    now = rt.clock.now()
    event = scrubbed(event)
    body = msgspec.to_builtins(event)
    kind = body.pop("type")
    async with engine.transaction():
        current = await runs.get(run.id, lock=True)
        if current is None or current.state.finished:
            state_ = current.state.value if current else "gone"
            raise RunFinished(f"run #{run.id} is already {state_}")
        if attempt is not None and attempt != current.attempt:
            raise RunFinished(
                f"attempt {attempt} of run #{run.id}'s workflow run was superseded by attempt "
                f"{current.attempt}"
            )
        run = current
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
                # cannot spend an installation's day (the cap was passed to the agent). An
                # earlier attempt's spend (a re-run) stays counted.
                cost_usd=(run.cost_usd or 0)
                + min(event.cost_usd, run.cost_cap_usd or rt.settings.max_agent_cost_per_run),
                turns=(run.turns or 0) + min(event.turns, run.mode.spec.max_turns),
                finished_at=now,
            )
            if run.mode.spec.posts_report and event.report and event.report.strip():
                fields["report"] = event.report
            if run.mode is Mode.REVISE and event.commit and event.outcome == "completed":
                fields["pushed_sha"] = event.commit
        run = await runs.update(run.id, **fields)
        await run_events.record_event(run.id, kind, body)
        if isinstance(event, Completed):
            await _on_finish(rt, run)
        if not isinstance(event, Progress):
            await queue.enqueue(
                jobs.RUN_EFFECTS, {"run": run.id, "event": kind, **_effect_args(event)}
            )
    return run


def scrubbed(event: AgentEvent) -> AgentEvent:
    """The event with every text the agent wrote scrubbed of credentials (as log chunks are),
    before any of it is stored, queued or served: a plan, summary, blocker or report is kept only
    without them."""
    if isinstance(event, Progress):
        return msgspec.structs.replace(event, message=scrub_credentials(event.message))
    if isinstance(event, PlanProposed):
        return msgspec.structs.replace(event, body=scrub_credentials(event.body))
    if isinstance(event, Blocker):
        return msgspec.structs.replace(event, reason=scrub_credentials(event.reason))
    if isinstance(event, Completed):
        report = scrub_credentials(event.report) if event.report is not None else None
        return msgspec.structs.replace(
            event, summary=scrub_credentials(event.summary), report=report
        )
    return event


def _effect_args(event: AgentEvent) -> dict[str, Any]:
    if isinstance(event, PlanProposed):
        return {"plan": event.body}
    return {}


async def new_attempt(rt: Runtime, run: Run, attempt: int) -> Run:
    """A newer attempt of the run's workflow run (GitHub's "Re-run jobs") has shown up: from now
    on only it reports. A run that had ended runs again, unless the kill switch is on or another
    run is active on its issue (AttemptRefused); its budget was taken when it was dispatched, and
    what the earlier attempts spent stays counted. Returns the run as it now is (a still newer
    attempt may have been quicker)."""
    now = rt.clock.now()
    async with engine.transaction():
        current = await runs.get(run.id, lock=True)
        if current is None or current.attempt >= attempt:
            return current or run
        fields: dict[str, Any] = {"attempt": attempt, "last_seen_at": now}
        reopened = current.state.finished
        if reopened:
            if current.state is RunState.REFUSED or current.workflow_run_id is None:
                raise AttemptRefused(f"run #{run.id} was never dispatched")
            refusal = await gates.may_run_again(current, rt.settings)
            if refusal is not None:
                raise AttemptRefused(
                    f"attempt {attempt} of run #{run.id}'s workflow run cannot run it again: "
                    f"{refusal.reason}"
                )
            fields.update(
                state=RunState.RUNNING,
                outcome=None,
                summary=None,
                blocker_reason=None,
                blocker_category=None,
                finished_at=None,
                viewer_key=current.viewer_key or runs.new_viewer_key(),
            )
        try:
            run = await runs.update(run.id, **fields)
        except asyncpg.UniqueViolationError:  # another run became active on the issue meanwhile
            raise AttemptRefused(
                f"attempt {attempt} of run #{run.id}'s workflow run cannot run it again: "
                "another run is active on the issue"
            ) from None
        await run_events.record_event(
            run.id,
            "attempt",
            {"attempt": attempt, "previous": current.attempt, "reopened": reopened},
        )
        await audit.record(
            actor="github-actions",
            action="run.attempt",
            repository=run.repository,
            issue_number=run.issue_number,
            installation_id=run.installation_id,
            before={"run": run.id, "attempt": current.attempt, "state": current.state.value},
            after={"run": run.id, "attempt": attempt, "state": run.state.value},
        )
        await queue.enqueue(jobs.RUN_EFFECTS, {"run": run.id, "event": "attempt"})
    log.info(
        "workflow run re-run: new attempt",
        extra={"run": run.id, "attempt": attempt, "reopened": reopened},
    )
    return run


async def finish(
    rt: Runtime,
    run: Run,
    state_: RunState,
    *,
    outcome: str,
    summary: str,
    attempt: int | None = None,
) -> Run | None:
    """End a run the agent never closed (workflow ended, cancelled, silent). Idempotent. With
    `attempt`, only if no newer attempt of its workflow run has shown up."""
    async with engine.transaction():
        current = await runs.get(run.id, lock=True)
        if current is None or current.state.finished:
            return None
        if attempt is not None and attempt < current.attempt:
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
        hours = spawn_limits.limits_for(rt.settings, loaded.config, run.mode).cooldown_hours
        await gates.start_cooldown(run.fingerprint, rt.clock.now() + timedelta(hours=hours))
    await chunks.announce_end(run.id, run.state.value)
    if await installations.is_public(run.repository_id):
        # Anyone could read the link in the status comment: it ends with the run.
        await runs.update(run.id, viewer_key=None)
    await audit.record(
        actor=run.requested_by or "dispatch",
        action="run.finish",
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
    elif kind == "attempt" and run.state.active:
        await _working_labels(rt, client, run)
    if run.state.finished:
        if kind in ("completed", "finished"):
            # Only the job of the event that ended the run: jobs of earlier events run late
            # and at the same time, and two would both find no report comment yet.
            run = await reports.publish(rt, run)
            run = await qa.finish_check(rt, run)
        await _finish_labels(rt, client, run)
    run = await status_comment.publish(rt, run)
    if run.state.finished:
        await follow_up_links.link(rt, run)


async def _working_labels(rt: Runtime, client: Any, run: Run) -> None:
    """A run working again (a re-run of its workflow run after it had ended)."""
    await state.move_to(
        client,
        rt,
        run.repository,
        run.issue_number,
        Status.IN_PROGRESS,
        actor=await rt.github.bot_login(),
        reason=f"run #{run.id} attempt {run.attempt}",
        installation_id=run.installation_id,
    )
    await rest.add_label(client, run.repository, run.issue_number, f"{AGENT_PREFIX}{run.agent}")


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
    for run in await run_liveness.silent_since(cutoff):
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


async def runs_pull_url(rt: Runtime, run: Run, number: int) -> str | None:
    """GitHub's own address of pull request `number` if GitHub says it comes from the run's own
    branch, else None. The address the agent reported is never used: it could point anywhere."""
    client = rt.github.installation(run.installation_id)
    pull = await rest.get_pull(client, run.repository, number)
    if pull is None or not pull_requests.is_run_branch(run, pull.get("head") or {}):
        return None
    return str(
        pull.get("html_url") or f"{rt.settings.github_web_url}/{run.repository}/pull/{number}"
    )


async def seen(rt: Runtime, run: Run) -> None:
    """The agent is alive (it just sent output): keep the watchdog away."""
    await run_liveness.mark_seen(run.id, rt.clock.now())
