"""The verbs that start and stop agent runs: investigate, implement, qa, research, cancel,
retry. A verb creates the run (queued) and queues its dispatch in the command's transaction; the
dispatch job applies the spawn gates and answers on the issue (🚀 and the run's status comment,
or 😕 and why not)."""

from __future__ import annotations

from app import jobs, queue
from app.agents import lifecycle, plans, runs
from app.agents.runs import RunState
from app.commands.context import CommandContext, Result
from app.commands.permissions import Permission
from app.commands.registry import registry
from app.db import engine
from app.modes import Mode

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
) -> Result:
    try:
        async with engine.transaction():
            run = await runs.create(
                installation_id=ctx.comment.installation_id,
                repository=ctx.repository,
                repository_id=ctx.comment.repository_id,
                issue_number=ctx.number,
                mode=mode,
                requested_by=ctx.comment.author,
                command_id=ctx.command_id,
                notes=notes or None,
                plan_id=plan_id,
                retry_of=retry_of,
            )
            await queue.enqueue(jobs.DISPATCH_RUN, {"run": run.id}, dedupe_key=f"dispatch:{run.id}")
    except runs.ActiveRunExists as exc:
        if exc.run.command_id is not None and exc.run.command_id == ctx.command_id:
            return Result.done(None, reaction=None)  # this command's own run, from an earlier try
        return Result.refuse(
            f"run #{exc.run.id} ({exc.run.mode.value}) is already {exc.run.state.value} on this "
            "issue; `/dispatch cancel` stops it."
        )
    warning = await _duplicate_warning(ctx) if mode is Mode.INVESTIGATE else None
    # The dispatch job answers with 🚀 and the status comment, or with the gate's refusal.
    return Result.done(warning, reaction=None) if warning else Result.done(None, reaction=None)


async def _duplicate_warning(ctx: CommandContext) -> str | None:
    from app.search import duplicates

    return await duplicates.warning_for(
        ctx.rt, ctx.comment.installation_id, ctx.repository, ctx.number
    )


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
    plan = await plans.latest(ctx.comment.repository_id, ctx.number)
    if ctx.config.plans.require_approval and (plan is None or plan.state != "approved"):
        if plan is not None and plan.state == "proposed":
            return Result.refuse(
                f"the plan (revision `{plan.revision}`) is waiting for review: "
                "`/dispatch approve` it first."
            )
        return Result.refuse(
            "there is no approved plan for this issue: `/dispatch investigate`, then "
            "`/dispatch approve` the plan."
        )
    plan_id = plan.id if plan is not None and plan.state == "approved" else None
    return await start_run(ctx, Mode.IMPLEMENT, notes=ctx.command.args, plan_id=plan_id)


@registry.verb(
    "qa",
    permission=Permission.WRITE,
    help="Dispatch a QA run against the pull request or branch.",
    usage="[instructions]",
)
async def qa(ctx: CommandContext) -> Result:
    return await start_run(ctx, Mode.QA, notes=ctx.command.args)


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
    return await start_run(
        ctx, previous.mode, notes=previous.notes, plan_id=previous.plan_id, retry_of=previous.id
    )
