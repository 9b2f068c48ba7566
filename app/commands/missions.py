"""`ask`, the verb that starts a mission, and the mission side of `approve` and `reject`: on an
issue that has a mission, those two review the mission's proposal (the issue decides; see
`review.py`). Planning, review and execution live in `app/orchestrator`."""

from __future__ import annotations

from datetime import datetime

from app.commands.context import CommandContext, Result
from app.commands.registry import Registry
from app.db import engine
from app.github.permissions import Permission
from app.orchestrator import asking, review
from app.orchestrator.missions import Mission, Source

registry = Registry()


@registry.verb(
    "ask",
    permission=Permission.WRITE,
    help="Start a mission: Claude proposes issues and runs; nothing happens until `approve`.",
    usage="<what you want>",
)
async def ask(ctx: CommandContext) -> Result:
    request = ctx.command.args.strip()
    if not request:
        return Result.refuse(
            "`/dispatch ask` needs what you want, e.g. `/dispatch ask rate-limit the public API "
            "and alert when clients hit the limit`."
        )
    started = await asking.start(
        ctx.rt,
        installation_id=ctx.comment.installation_id,
        repository=ctx.repository,
        repository_id=ctx.comment.repository_id,
        issue_number=ctx.number,
        source=Source.COMMAND,
        request=request,
        requested_by=ctx.comment.author,
        command_id=ctx.command_id,
    )
    if isinstance(started, asking.Refusal):
        return Result.refuse(started.reason)
    # The answer is the mission's status comment, edited in place as it plans.
    return Result.done(None, reaction=None)


async def approve(ctx: CommandContext, mission: Mission) -> Result:
    """`/dispatch approve [revision]` on a mission issue."""
    revision = ctx.command.args.strip().split()[0] if ctx.command.args.strip() else None
    answer = await review.approve(
        ctx.rt,
        mission,
        by=ctx.comment.author,
        revision=revision.strip("`") if revision else None,
        sent_at=await _sent_at(ctx),
        allow_self_approval=ctx.config.plans.allow_self_approval,
    )
    return Result.done(answer.reply, reaction="+1") if answer.ok else Result.refuse(answer.reply)


async def reject(ctx: CommandContext, mission: Mission, reason: str) -> Result:
    """`/dispatch reject <reason>` on a mission issue: Claude plans again with the reason."""
    answer = await review.reject(ctx.rt, mission, by=ctx.comment.author, reason=reason)
    return Result.done(answer.reply, reaction="+1") if answer.ok else Result.refuse(answer.reply)


async def _sent_at(ctx: CommandContext) -> datetime | None:
    """When Dispatch received the command: an approval sent before the proposal it would
    approve was posted cannot have been about that proposal."""
    if ctx.command_id is None:
        return None
    async with engine.connection() as connection:
        sent: datetime | None = await connection.fetchval(
            "SELECT created_at FROM command WHERE id = $1", ctx.command_id
        )
    return sent
