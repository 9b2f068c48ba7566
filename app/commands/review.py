"""Plan review: `approve` binds approval to the plan revision on the table; `reject <reason>`
sends it back, and the reason goes into the next investigation's brief."""

from __future__ import annotations

from app.agents import plans
from app.agents.plans import PlanState
from app.commands.context import CommandContext, Result
from app.commands.registry import Registry
from app.github import rest
from app.github.permissions import Permission
from app.issues.labels import Plan as PlanLabel

registry = Registry()


@registry.verb(
    "approve", permission=Permission.WRITE, help="Approve the proposed plan (this revision)."
)
async def approve(ctx: CommandContext) -> Result:
    plan = await plans.latest(ctx.comment.repository_id, ctx.number)
    if plan is None or plan.state is not PlanState.PROPOSED:
        return Result.refuse("there is no proposed plan waiting for review on this issue.")
    if (
        not ctx.config.plans.allow_self_approval
        and plan.requested_by is not None
        and plan.requested_by.lower() == ctx.comment.author.lower()
    ):
        return Result.refuse(
            "you asked for this plan, so someone else approves it "
            "(or set `plans.allow_self_approval: true` in `.github/dispatch.yml`)."
        )
    await plans.decide(plan, approved=True, by=ctx.comment.author)
    await rest.remove_label(ctx.client, ctx.repository, ctx.number, PlanLabel.PROPOSED)
    await rest.add_label(ctx.client, ctx.repository, ctx.number, PlanLabel.APPROVED)
    return Result.done(
        f"Approved plan revision `{plan.revision}`. `/dispatch implement` starts the work; a newer "
        "plan would need a new approval.",
        reaction="+1",
    )


@registry.verb(
    "reject",
    permission=Permission.WRITE,
    help="Reject the proposed plan; the reason goes to the next investigation.",
    usage="<reason>",
)
async def reject(ctx: CommandContext) -> Result:
    reason = ctx.command.args.strip()
    if not reason:
        return Result.refuse(
            "`/dispatch reject` needs a reason, e.g. `/dispatch reject keep the public API`."
        )
    plan = await plans.latest(ctx.comment.repository_id, ctx.number)
    if plan is None or plan.state is not PlanState.PROPOSED:
        return Result.refuse("there is no proposed plan waiting for review on this issue.")
    await plans.decide(plan, approved=False, by=ctx.comment.author, feedback=reason)
    await rest.remove_label(ctx.client, ctx.repository, ctx.number, PlanLabel.PROPOSED)
    return Result.done(
        f"Rejected plan revision `{plan.revision}`. "
        "The next `/dispatch investigate` gets your reason.",
        reaction="+1",
    )
