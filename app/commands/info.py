"""`help` and `status`: the verbs that only tell (status: labels, runs, budgets left, and what the
issue waits for)."""

from __future__ import annotations

from app.agents import runs, spawn_budgets, spawn_limits
from app.claims import records as claims
from app.commands.context import CommandContext, Result
from app.commands.registry import Registry
from app.github import markdown, rest
from app.github.permissions import Permission
from app.issues.labels import Plan, Signal, Status, priority_of, status_of
from app.modes import COMMAND_MODES

registry = Registry()


@registry.verb("help", permission=Permission.READ, help="List the commands and who may use them.")
async def help_verb(ctx: CommandContext) -> Result:
    lines = [
        "**Dispatch commands** (write them on their own line in an issue or pull request comment):",
        "",
        "| command | does | minimum permission |",
        "|---|---|---|",
    ]
    for verb in ctx.verbs.listing():
        level = ctx.config.permission_for(verb.name) or verb.permission
        lines.append(f"| `/dispatch {verb.usage}` | {verb.help} | {level.label} |")
    lines += ["", f"Your permission on {ctx.repository}: **{ctx.permission.label}**."]
    return Result.done("\n".join(lines), reaction=None)


WAITING = {
    None: "It has no `status/*` label yet: add `status/backlog` or `status/ready`.",
    Status.BACKLOG: "It is in the backlog: move it to `status/ready` when it is clear enough.",
    Status.READY: "It is ready: `/dispatch investigate` starts an investigation.",
    Status.IN_PROGRESS: "An agent or a person is working on it.",
    Status.IN_REVIEW: "A pull request is open for it: it waits for review and merge.",
    Status.VERIFYING: "The fix is merged: Dispatch is watching for the error to come back.",
    Status.DONE: "It is done.",
}


@registry.verb(
    "status",
    permission=Permission.READ,
    help="Show state, runs and budgets, and why the issue is not moving.",
)
async def status_verb(ctx: CommandContext) -> Result:
    labels = await rest.issue_labels(ctx.client, ctx.repository, ctx.number)
    status = status_of(labels)
    priority = priority_of(labels)
    waiting = WAITING[status]
    if Signal.BLOCKED in labels:
        waiting = "An agent is blocked and needs a human: see the run's status comment."
    elif Plan.PROPOSED in labels:
        waiting = "A plan is proposed: `/dispatch approve` or `/dispatch reject <reason>`."
    elif Plan.APPROVED in labels and status in (Status.READY, Status.BACKLOG, None):
        waiting = "The plan is approved: `/dispatch implement` starts the work."
    claim = await claims.active_on(ctx.comment.repository_id, ctx.number)
    if claim is not None and Signal.BLOCKED not in labels:
        waiting = (
            f"`{claim.label}` holds it (claim #{claim.id}); the claim lasts while its agent "
            "sends heartbeats, and removing the label ends it."
        )
    lines = [
        f"**Status of #{ctx.number}**",
        "",
        f"- status: `{status.value if status else 'none'}`",
        f"- priority: `{priority.value if priority else 'none'}`",
        f"- labels: {', '.join(f'`{name}`' for name in sorted(labels)) or 'none'}",
    ]
    if claim is not None:
        lines.append(
            f"- claimed by `{claim.label}` with API token {markdown.code_span(claim.token_name)}"
            f" until {claim.lease_expires_at:%Y-%m-%d %H:%M} UTC"
        )
    lines += await _runs_section(ctx)
    lines += ["", f"**Waiting for:** {waiting}"]
    return Result.done("\n".join(lines), reaction=None)


async def _runs_section(ctx: CommandContext) -> list[str]:
    recent = await runs.for_issue(ctx.repository, ctx.number, limit=5)
    lines = ["", "**Runs**" if recent else "**Runs:** none yet"]
    for run in recent:
        cost = f", ${run.cost_usd:.2f}" if run.cost_usd is not None else ""
        extra = f" — {run.refusal}" if run.refusal else ""
        lines.append(f"- #{run.id} {run.mode.value}: {run.state.value}{cost}{extra}")
    limits = {
        mode: spawn_limits.limits_for(ctx.rt.settings, ctx.config, mode) for mode in COMMAND_MODES
    }
    left = await spawn_budgets.budgets_left(ctx.comment.installation_id, limits, ctx.rt.clock.now())
    lines += ["", "**Budgets today** (this installation)"]
    lines += [
        f"- {b.mode}: {max(b.budget - b.spawned, 0)} of {b.budget} spawns left, "
        f"{b.active}/{b.concurrency} running"
        for b in left
    ]
    return lines
