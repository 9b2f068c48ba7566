"""`/dispatch similar`: the five issues closest to this one."""

from __future__ import annotations

from app.commands.context import CommandContext, Result
from app.commands.registry import Registry
from app.github import markdown
from app.github.permissions import Permission
from app.search import duplicates, indexing

registry = Registry()


@registry.verb("similar", permission=Permission.READ, help="List the five most similar issues.")
async def similar(ctx: CommandContext) -> Result:
    if ctx.rt.embeddings is None:
        return Result.refuse("similarity search is off on this Dispatch (DISPATCH_EMBEDDINGS=off).")
    if not await indexing.ensure_embedded(ctx.rt, ctx.comment.repository_id, ctx.number):
        return Result.refuse("this issue is not in Dispatch's cache yet; try again in a minute.")
    # Usually a no-op: issues are embedded when they open and after a repository is onboarded.
    await indexing.backfill(ctx.rt, ctx.comment.repository_id)
    found = await duplicates.nearest(ctx.comment.repository_id, ctx.number, limit=5)
    if not found:
        return Result.done("No similar issues found in this repository.", reaction=None)
    cutoff = await duplicates.threshold(ctx.rt, ctx.comment.installation_id, ctx.repository)
    lines = ["**Similar issues**", ""]
    for n in found:
        flag = " — likely duplicate" if n.rank >= cutoff and n.state == "open" else ""
        title = markdown.inline_text(n.title, 120)
        lines.append(f"- #{n.number} {title} ({n.state}, similarity {n.score:.2f}){flag}")
    return Result.done("\n".join(lines), reaction=None)
