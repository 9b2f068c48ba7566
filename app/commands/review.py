"""Review: `approve` and `reject`, one pair of verbs for both things Dispatch asks people to
review. The issue decides which: on an issue with a mission (`/dispatch ask`, the
`dispatch/mission` label) they review the mission's proposal (`missions.py`); on any other issue,
the plan an investigation proposed. `approve` binds approval to the revision on the table;
`reject <reason>` sends it back, and the reason goes to the next investigation (or planning)."""

from __future__ import annotations

from app.agents import plans
from app.agents.plans import PlanState
from app.commands import missions
from app.commands.context import CommandContext, Result
from app.commands.registry import Registry
from app.github import rest
from app.github.permissions import Permission
from app.issues.labels import Plan as PlanLabel
from app.orchestrator import review

registry = Registry()


@registry.verb(
    "approve",
    permission=Permission.WRITE,
    help="Approve the proposed plan, or the mission's proposal on a mission issue (this revision).",
    usage="[revision]",
)
async def approve(ctx: CommandContext) -> Result:
    mission = await review.for_issue(ctx.comment.repository_id, ctx.number)
    if mission is not None:
        return await missions.approve(ctx, mission)
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
    help="Reject the proposed plan (or mission proposal); the reason goes to the next attempt.",
    usage="<reason>",
)
async def reject(ctx: CommandContext) -> Result:
    reason = ctx.command.args.strip()
    if not reason:
        return Result.refuse(
            "`/dispatch reject` needs a reason, e.g. `/dispatch reject keep the public API`."
        )
    mission = await review.for_issue(ctx.comment.repository_id, ctx.number)
    if mission is not None:
        return await missions.reject(ctx, mission, reason)
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
