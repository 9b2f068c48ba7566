"""Starting a run: spawn gates, then `workflow_dispatch` to the repository's agent workflow with
inputs `run_id`, `mode`, `dispatch_url`, then the announcement (labels, status comment, 🚀).

Runs as a job per run and is idempotent: the gates decide once (the run leaves `queued` in the
same transaction that takes the budget); a retried dispatch first asks GitHub whether the
workflow run already exists (its run-name is `dispatch-run-<id>`) before sending again.

A **harness run** (trigger `harness`) is different in one step only: the harness that registered
it is already running, so nothing is sent to GitHub Actions. Its gates pass (and take the budget)
exactly like any run's; it becomes `dispatched` with `dispatch_sent_at` set and no workflow, and is
announced the same way. Runs asked for through the API (harness, MCP) have their gates decided in
the request (`decide`), and a refusal is the caller's answer, not a comment on the issue.
"""

from __future__ import annotations

import logging
from typing import Any

from app.agents import (
    follow_up_links,
    gates,
    qa,
    runs,
    spawn_budgets,
    spawn_decisions,
    spawn_limits,
    status_comment,
)
from app.agents.runs import Run, RunState, Trigger
from app.audit import log as audit
from app.db import engine
from app.github import rest
from app.issues import repo_config, state
from app.issues.labels import AGENT_PREFIX, DYNAMIC_COLORS, Status
from app.runtime import Runtime

log = logging.getLogger(__name__)

MISSING_WORKFLOW = (
    "the agent workflow `{workflow}` is missing or cannot be dispatched in {repository} "
    "(GitHub answered {status}{detail}). Copy `workflows/dispatch-agent.yml` from Dispatch into "
    "`.github/workflows/{workflow}` on the default branch, or point `workflows` in "
    "`.github/dispatch.yml` at the right file"
)


async def dispatch(run_id: int, rt: Runtime) -> Run | None:
    run = await _decide(run_id, rt)
    if run is None:
        current = await runs.get(run_id)
        if current is not None and current.trigger is Trigger.HARNESS and current.state.active:
            # The harness reported `started` before this job announced its run.
            return await announce(rt, current)
        return None
    if run.state is RunState.REFUSED:
        if not run.trigger.through_api:  # the API caller already has the refusal
            await announce(rt, run)
        return run
    if run.state is RunState.DISPATCHED:
        if run.dispatch_sent_at is not None:
            # Sent by an earlier attempt (or a harness run, which nothing is sent for): the
            # announcement may not have happened yet; every step of it is idempotent.
            return await announce(rt, run)
        try:
            run = await _send(rt, run)
        except rest.WorkflowNotDispatchable as exc:
            now = rt.clock.now()
            await spawn_budgets.refund(run, run.dispatched_at or now)
            run = await runs.update(
                run.id,
                state=RunState.FAILED,
                outcome="failed",
                summary=MISSING_WORKFLOW.format(
                    workflow=run.workflow,
                    repository=run.repository,
                    status=exc.status,
                    detail=f": {exc}" if str(exc) else "",
                ),
                finished_at=now,
            )
            await announce(rt, run)
            return run
        await announce(rt, run)
    return run


async def decide(run_id: int, rt: Runtime) -> Run:
    """Apply the spawn gates now (if the dispatch job has not yet) and return the run as they
    left it: `dispatched`, or `refused` with the reason. The job then does the rest."""
    decided = await _decide(run_id, rt)
    if decided is not None:
        return decided
    run = await runs.get(run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    return run


async def _decide(run_id: int, rt: Runtime) -> Run | None:
    async with engine.transaction():
        run = await runs.get(run_id, lock=True)
        if run is None or run.state not in (RunState.QUEUED, RunState.DISPATCHED):
            return None
        if run.state is RunState.DISPATCHED:
            return run  # gates already passed; a previous attempt died before or while sending
        loaded = await repo_config.load(rt, run.installation_id, run.repository)
        limits = spawn_limits.limits_for(rt.settings, loaded.config, run.mode)
        now = rt.clock.now()
        decision = await gates.decide(run, limits, now)
        await spawn_decisions.record(run, decision)
        if not decision.allowed:
            reason = decision.reason
            if decision.clears_at is not None:
                reason += f"; it clears at {decision.clears_at:%Y-%m-%d %H:%M} UTC"
            run = await runs.update(run.id, state=RunState.REFUSED, refusal=reason, finished_at=now)
        elif run.trigger is Trigger.HARNESS:
            # The harness is running already: no workflow to dispatch (see the module).
            run = await runs.update(
                run.id,
                state=RunState.DISPATCHED,
                dispatched_at=now,
                dispatch_sent_at=now,
                cost_cap_usd=limits.cost_cap_usd,
            )
        else:
            run = await runs.update(
                run.id,
                state=RunState.DISPATCHED,
                dispatched_at=now,
                workflow=loaded.config.workflows.for_mode(run.mode.value),
                ref=loaded.config.workflows.ref,
                cost_cap_usd=limits.cost_cap_usd,
            )
        await audit.record(
            actor=run.requested_by or "dispatch",
            action=f"run.{'dispatch' if decision.allowed else 'refuse'}",
            repository=run.repository,
            issue_number=run.issue_number,
            installation_id=run.installation_id,
            after={"run": run.id, "mode": run.mode.value, "gate": decision.gate},
            outcome=audit.Outcome.DONE if decision.allowed else audit.Outcome.REFUSED,
            reason=decision.reason,
        )
    return run


async def _send(rt: Runtime, run: Run) -> Run:
    client = rt.github.installation(run.installation_id)
    workflow = run.workflow or "dispatch-agent.yml"
    ref = run.ref or (await rest.get_repository(client, run.repository))["default_branch"]
    await runs.update(
        run.id, dispatch_attempts=run.dispatch_attempts + 1, ref=ref, workflow=workflow
    )
    if run.dispatch_attempts > 0:
        existing = await _find_workflow_run(client, run)
        if existing is not None:
            return await runs.update(
                run.id,
                dispatch_sent_at=rt.clock.now(),
                workflow_run_id=existing["id"],
                workflow_run_url=existing.get("html_url"),
            )
    inputs = {
        "run_id": str(run.id),
        "mode": run.mode.value,
        "dispatch_url": rt.settings.dispatch_url,
    }
    dispatched = await rest.dispatch_workflow(client, run.repository, workflow, ref, inputs)
    log.info(
        "workflow dispatched",
        extra={
            "run": run.id,
            "workflow_run": dispatched.workflow_run_id,
            "repository": run.repository,
        },
    )
    return await runs.update(
        run.id,
        dispatch_sent_at=rt.clock.now(),
        workflow_run_id=dispatched.workflow_run_id,
        workflow_run_url=dispatched.html_url,
    )


async def _find_workflow_run(client: Any, run: Run) -> dict[str, Any] | None:
    for candidate in await rest.workflow_runs(client, run.repository, event="workflow_dispatch"):
        if candidate.get("display_title") == run_name(run.id):
            return candidate
    return None


def run_name(run_id: int) -> str:
    return f"dispatch-run-{run_id}"


def is_our_workflow_run(
    run: Run, *, repository_id: int | None, event: str | None, workflow: str | None, title: str
) -> bool:
    """Whether a workflow run (as GitHub or its OIDC token describes it) is the one Dispatch
    dispatched for `run`: its title alone is guessable, so it must also come from the run's
    repository, from a `workflow_dispatch` of the run's workflow file, after Dispatch sent it."""
    if run.state not in (RunState.DISPATCHED, RunState.RUNNING) or run.dispatch_sent_at is None:
        return False
    if repository_id is None or int(repository_id) != run.repository_id:
        return False
    if event != "workflow_dispatch" or title != run_name(run.id):
        return False
    expected = run.workflow or "dispatch-agent.yml"
    return workflow is not None and (workflow == expected or workflow.endswith("/" + expected))


def workflow_file(path_or_ref: str | None) -> str | None:
    """`.github/workflows/x.yml` (a workflow run's path) or `o/r/.github/workflows/x.yml@ref`
    (an OIDC token's workflow_ref) → `.github/workflows/x.yml`."""
    if not path_or_ref:
        return None
    path = path_or_ref.split("@", 1)[0]
    marker = ".github/workflows/"
    return path[path.index(marker) :] if marker in path else None


async def announce(rt: Runtime, run: Run) -> Run:
    """Tell the issue: labels for a started run, the status comment, and the reaction on the
    command that asked for it. Every step is idempotent."""
    client = rt.github.installation(run.installation_id)
    if run.state in (RunState.DISPATCHED, RunState.RUNNING):
        if run.mode.spec.moves_status:
            await state.move_to(
                client,
                rt,
                run.repository,
                run.issue_number,
                Status.IN_PROGRESS,
                actor=await rt.github.bot_login(),
                reason=f"run #{run.id} dispatched",
                installation_id=run.installation_id,
            )
        run = await qa.start_check(rt, run)
        label = f"{AGENT_PREFIX}{run.agent}"
        await rest.create_label(
            client, run.repository, label, DYNAMIC_COLORS[AGENT_PREFIX], "Agent working on it"
        )
        await rest.add_label(client, run.repository, run.issue_number, label)
    run = await status_comment.publish(rt, run)
    # A revision's status comment is on its pull request; the issue it fixes links to it.
    await follow_up_links.link(rt, run)
    if run.reaction_target is not None:
        reaction = {
            RunState.DISPATCHED: "rocket",
            RunState.REFUSED: "confused",
            RunState.FAILED: "confused",
        }.get(run.state)
        if reaction:
            await rest.react(client, run.repository, run.reaction_target, reaction)
    return run
