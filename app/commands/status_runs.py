"""The runs and budgets part of `/dispatch status`."""

from __future__ import annotations

from app.agents import gates, runs
from app.commands.context import CommandContext
from app.commands.info import STATUS_SECTIONS


async def runs_section(ctx: CommandContext) -> list[str]:
    recent = await runs.for_issue(ctx.repository, ctx.number, limit=5)
    lines = ["", "**Runs**" if recent else "**Runs:** none yet"]
    for run in recent:
        cost = f", ${run.cost_usd:.2f}" if run.cost_usd is not None else ""
        extra = f" — {run.refusal}" if run.refusal else ""
        lines.append(f"- #{run.id} {run.mode.value}: {run.state.value}{cost}{extra}")
    limits = {
        mode: gates.limits_for(ctx.rt.settings, ctx.config, mode)
        for mode in ("investigate", "implement", "qa", "research")
    }
    left = await gates.budgets_left(ctx.comment.installation_id, limits, ctx.rt.clock.now())
    lines += ["", "**Budgets today** (this installation)"]
    lines += [
        f"- {b.mode}: {max(b.budget - b.spawned, 0)} of {b.budget} spawns left, "
        f"{b.active}/{b.concurrency} running"
        for b in left
    ]
    return lines


STATUS_SECTIONS.append(runs_section)
