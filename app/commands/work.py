"""The verbs that start and stop agent runs: investigate, implement, qa, research, cancel,
retry. A verb asks for a run through the one run-starting service (`agents.spawn`); the dispatch
job applies the spawn gates and answers on the issue (🚀 and the run's status comment, or 😕 and
why not)."""

from __future__ import annotations

from typing import Any

from app.agents import lifecycle, plans, qa, runs, spawn
from app.agents.runs import NewRun, RunState, Trigger
from app.commands.context import CommandContext, Result
from app.commands.registry import Registry
from app.github.permissions import Permission
from app.modes import Mode
from app.search import duplicates

registry = Registry()

RETRYABLE = (
    RunState.FAILED,
    RunState.TIMED_OUT,
    RunState.CANCELLED,
    RunState.BLOCKED,
    RunState.REFUSED,
)


async def start_run(
    ctx: CommandContext,
    mode: Mode,
    *,
    notes: str | None = None,
    plan_id: int | None = None,
    retry_of: int | None = None,
    target_pull: dict[str, Any] | None = None,
) -> Result:
    result = await spawn.request_run(
        NewRun(
            installation_id=ctx.comment.installation_id,
            repository=ctx.repository,
            repository_id=ctx.comment.repository_id,
            issue_number=ctx.number,
            mode=mode,
            trigger=Trigger.RETRY if retry_of else Trigger.COMMAND,
            requested_by=ctx.comment.author,
            command_id=ctx.command_id,
            command_line=ctx.command.line,
            reaction_target=ctx.comment.target,
            notes=notes or None,
            plan_id=plan_id,
            retry_of=retry_of,
            target_pull=target_pull,
        )
    )
    if isinstance(result, spawn.Refusal):
        own = result.active is not None and result.active.command_id is not None
        if own and result.active is not None and result.active.command_id == ctx.command_id:
            return Result.done(None, reaction=None)  # this command's own run, from a retry
        return Result.refuse(result.reason)
    warning = None
    if mode is Mode.INVESTIGATE:
        warning = await duplicates.warning_for(
            ctx.rt, ctx.comment.installation_id, ctx.repository, ctx.number
        )
    # The dispatch job answers with 🚀 and the status comment, or with the gate's refusal.
    return Result.done(warning, reaction=None)


@registry.verb(
    "investigate",
    permission=Permission.WRITE,
    help="Dispatch an agent to investigate; it ends with a plan to review.",
    usage="[notes]",
)
async def investigate(ctx: CommandContext) -> Result:
    return await start_run(ctx, Mode.INVESTIGATE, notes=ctx.command.args)


@registry.verb(
    "implement",
    permission=Permission.WRITE,
    help="Dispatch an agent to implement the approved plan and open a pull request.",
    usage="[notes]",
)
async def implement(ctx: CommandContext) -> Result:
    try:
        plan_id = await plans.for_implementation(
            ctx.comment.repository_id,
            ctx.number,
            require_approval=ctx.config.plans.require_approval,
        )
    except plans.PlanRequired as exc:
        return Result.refuse(str(exc))
    return await start_run(ctx, Mode.IMPLEMENT, notes=ctx.command.args, plan_id=plan_id)


@registry.verb(
    "qa",
    permission=Permission.WRITE,
    help="Dispatch a QA run on the pull request (here, or the one linked to the issue); its "
    "verdict becomes the `dispatch/qa` check.",
    usage="[instructions]",
)
async def qa_run(ctx: CommandContext) -> Result:
    target = await qa_target(ctx)
    if isinstance(target, qa.Refused):
        return Result.refuse(target.reason)
    return await start_run(ctx, Mode.QA, notes=ctx.command.args, target_pull=target)


async def qa_target(ctx: CommandContext) -> dict[str, Any] | qa.Refused:
    return await qa.target_for(
        ctx.client,
        repository=ctx.repository,
        repository_id=ctx.comment.repository_id,
        number=ctx.number,
        is_pull=ctx.comment.is_pull,
        allow_forks=ctx.config.qa.allow_forks,
    )


@registry.verb(
    "research",
    permission=Permission.WRITE,
    help="Dispatch deep research on a question.",
    usage="<question>",
)
async def research(ctx: CommandContext) -> Result:
    if not ctx.command.args:
        return Result.refuse(
            "`/dispatch research` needs a question, e.g. `/dispatch research which queue fits?`"
        )
    return await start_run(ctx, Mode.RESEARCH, notes=ctx.command.args)


@registry.verb(
    "cancel", permission=Permission.WRITE, help="Cancel the issue's active run and its Actions run."
)
async def cancel(ctx: CommandContext) -> Result:
    run = await runs.active_for_issue(ctx.comment.repository_id, ctx.number)
    if run is None:
        return Result.refuse("there is no active run on this issue to cancel.")
    finished = await lifecycle.finish(
        ctx.rt,
        run,
        RunState.CANCELLED,
        outcome="failed",
        summary=f"cancelled by @{ctx.comment.author}",
    )
    if finished is not None:
        await lifecycle.cancel_workflow_run(ctx.rt, finished)
    return Result.done(f"Cancelled run #{run.id} ({run.mode.value}).", reaction="+1")


@registry.verb("retry", permission=Permission.WRITE, help="Run the last failed run again.")
async def retry(ctx: CommandContext) -> Result:
    previous = next(
        (r for r in await runs.for_issue(ctx.repository, ctx.number) if r.state in RETRYABLE),
        None,
    )
    if previous is None:
        return Result.refuse("there is no failed, timed-out, cancelled or refused run to retry.")
    target = None
    if previous.mode is Mode.QA:
        # The pull request as it is now: a retry checks its current head.
        found = await qa_target(ctx)
        if isinstance(found, qa.Refused):
            return Result.refuse(found.reason)
        target = found
    return await start_run(
        ctx,
        previous.mode,
        notes=previous.notes,
        plan_id=previous.plan_id,
        retry_of=previous.id,
        target_pull=target,
    )
