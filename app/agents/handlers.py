"""Webhooks about runs and their pull requests: `workflow_run` binds and closes runs the agent
never closed, `workflow_job` keeps them alive, a pull request that fixes an issue moves it to
`status/in-review` (opened) or `status/done` (merged; an issue whose fix is being verified stays
`status/verifying`), and labels may start auto-dispatch rules."""

from __future__ import annotations

import re

from app.agents import auto_dispatch, lifecycle, pull_requests, runs
from app.agents.dispatcher import is_our_workflow_run, workflow_file
from app.agents.runs import RunState
from app.events import Event, Router, is_own_change
from app.issues import state
from app.issues.labels import Status
from app.runtime import Runtime

router = Router()

_RUN_NAME = re.compile(r"^dispatch-run-(\d+)$")


async def _run_of(event: Event) -> runs.Run | None:
    workflow_run = event.payload["workflow_run"]
    repository_id = (event.payload.get("repository") or {}).get("id")
    run = await runs.by_workflow_run(workflow_run["id"])
    if run is not None:
        return run if run.repository_id == repository_id else None
    match = _RUN_NAME.match(workflow_run.get("display_title") or "")
    if match is None:
        return None
    run = await runs.get(int(match.group(1)))
    if run is None or run.workflow_run_id is not None:
        return None
    # Servers without run details at dispatch: this is where the run learns its workflow run,
    # if everything about it says Dispatch started it (a title alone anyone can write).
    if not is_our_workflow_run(
        run,
        repository_id=repository_id,
        event=workflow_run.get("event"),
        workflow=workflow_file(workflow_run.get("path")),
        title=workflow_run.get("display_title") or "",
    ):
        return None
    return await runs.update(
        run.id, workflow_run_id=workflow_run["id"], workflow_run_url=workflow_run.get("html_url")
    )


@router.on("workflow_run")
async def workflow_run_changed(event: Event, rt: Runtime) -> None:
    workflow_run = event.payload["workflow_run"]
    run = await _run_of(event)
    if run is None or run.state.finished or event.action != "completed":
        return
    conclusion = workflow_run.get("conclusion") or "unknown"
    if conclusion == "cancelled":
        final, outcome = RunState.CANCELLED, "failed"
    elif conclusion == "timed_out":
        final, outcome = RunState.TIMED_OUT, "failed"
    else:
        final, outcome = RunState.FAILED, "failed"
    await lifecycle.finish(
        rt,
        run,
        final,
        outcome=outcome,
        summary=f"the workflow run ended ({conclusion}) without the agent reporting completion",
    )


@router.on("workflow_job", "in_progress", "completed")
async def workflow_job_changed(event: Event, rt: Runtime) -> None:
    job = event.payload["workflow_job"]
    run = await runs.by_workflow_run(job["run_id"])
    if run is not None and run.state.active:
        await lifecycle.seen(rt, run)


async def _move_all(
    event: Event,
    rt: Runtime,
    numbers: set[int],
    status: Status,
    reason: str,
    *,
    unless: Status | None = None,
) -> None:
    client = rt.github.installation(event.installation_id or 0)
    for number in sorted(numbers):
        await state.move_to(
            client,
            rt,
            event.repository or "",
            number,
            status,
            actor=await rt.github.bot_login(),
            reason=reason,
            delivery=event.delivery,
            installation_id=event.installation_id,
            unless=unless,
        )


@router.on("pull_request", "opened", "reopened", "edited", "ready_for_review")
async def pull_request_opened(event: Event, rt: Runtime) -> None:
    if event.installation_id is None:
        return
    pull_request = event.payload["pull_request"]
    numbers, run = await pull_requests.fixed_issues(event, rt)
    if run is not None and run.pr_number is None:
        await runs.update(
            run.id, pr_number=pull_request["number"], pr_url=pull_request.get("html_url")
        )
    reason = f"pull request #{pull_request['number']} opened for it"
    await _move_all(event, rt, numbers, Status.IN_REVIEW, reason)


@router.on("pull_request", "closed")
async def pull_request_merged(event: Event, rt: Runtime) -> None:
    pull_request = event.payload["pull_request"]
    if event.installation_id is None or not pull_request.get("merged"):
        return
    numbers, _ = await pull_requests.fixed_issues(event, rt)
    # The remediation room runs first for this event (app/worker.py) and moves the issues of
    # production errors to `status/verifying`; those stay there until the fix is verified.
    await _move_all(
        event,
        rt,
        numbers,
        Status.DONE,
        f"pull request #{pull_request['number']} merged",
        unless=Status.VERIFYING,
    )


@router.on("issues", "labeled", "opened")
async def auto_dispatch_rules(event: Event, rt: Runtime) -> None:
    if await is_own_change(event, rt):
        return  # Dispatch's own label changes never start runs
    await auto_dispatch.on_labels(event, rt)
