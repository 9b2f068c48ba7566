"""`watch <customer>` and `unwatch <customer>`: a customer follows an issue in their portal when
it carries `customer/<slug>`. The verbs add or remove that one label (creating it in the
customer's colour the first time); adding or removing it by hand on GitHub does the same."""

from __future__ import annotations

import difflib

from app.audit import log as audit
from app.commands.context import CommandContext, Result
from app.commands.registry import Registry
from app.github import rest
from app.github.permissions import Permission
from app.portal import customers
from app.portal.customers import Customer

registry = Registry()


def _slug(ctx: CommandContext, verb: str) -> str | Result:
    words = ctx.command.args.split()
    if not words:
        return Result.refuse(
            f"`/dispatch {verb}` needs a customer, e.g. `/dispatch {verb} acme` "
            "(`dispatch customer list` shows them)."
        )
    slug = words[0].removeprefix("customer/")
    if not customers.is_slug(slug):
        return Result.refuse(f"`{slug}` is not a customer slug: {customers.SLUG_FORMAT}.")
    return slug


async def _unknown(ctx: CommandContext, slug: str) -> Result:
    known = [c.slug for c in await customers.list_all(ctx.comment.installation_id)]
    closest = difflib.get_close_matches(slug, known, n=1, cutoff=0.5)
    hint = f" Did you mean `{closest[0]}`?" if closest else ""
    return Result.refuse(f"there is no customer `{slug}` here.{hint}")


async def _record(ctx: CommandContext, action: str, label: str, live: list[str]) -> None:
    change = {"added": label} if action == "label.add" else {"removed": label}
    await audit.record(
        actor=ctx.comment.author,
        action=action,
        repository=ctx.repository,
        issue_number=ctx.number,
        installation_id=ctx.comment.installation_id,
        before=live,
        after=change,
        reason=f"`{ctx.command.line}` by @{ctx.comment.author}",
        delivery=ctx.comment.delivery,
    )


async def _create_label(ctx: CommandContext, customer: Customer) -> None:
    await rest.create_label(
        ctx.client,
        ctx.repository,
        customer.label,
        customer.color.removeprefix("#"),
        f"{customer.name} follows this issue in the portal"[:100],
    )


@registry.verb(
    "watch",
    permission=Permission.TRIAGE,
    help="Let a customer follow this issue in their portal (adds `customer/<slug>`).",
    usage="<customer>",
)
async def watch(ctx: CommandContext) -> Result:
    slug = _slug(ctx, "watch")
    if isinstance(slug, Result):
        return slug
    if ctx.comment.is_pull:
        return Result.refuse("customers follow issues, not pull requests.")
    customer = await customers.in_installation(ctx.comment.installation_id, slug)
    if customer is None:
        return await _unknown(ctx, slug)
    live = await rest.issue_labels(ctx.client, ctx.repository, ctx.number)
    if customer.label in live:
        return Result.done(
            f"{customer.name} already follows this issue (`{customer.label}`); nothing changed.",
            reaction="+1",
        )
    await _create_label(ctx, customer)
    await rest.add_label(ctx.client, ctx.repository, ctx.number, customer.label)
    await _record(ctx, "label.add", customer.label, live)
    return Result(
        ok=True,
        reply=f"{customer.name} now follows this issue in their portal (`{customer.label}`).",
        reaction="+1",
        data={"customer": slug},
    )


@registry.verb(
    "unwatch",
    permission=Permission.TRIAGE,
    help="Stop a customer following this issue (removes `customer/<slug>`).",
    usage="<customer>",
)
async def unwatch(ctx: CommandContext) -> Result:
    slug = _slug(ctx, "unwatch")
    if isinstance(slug, Result):
        return slug
    label = customers.label_for(slug)
    live = await rest.issue_labels(ctx.client, ctx.repository, ctx.number)
    if label not in live:
        return Result.refuse(f"`{label}` is not on this issue: `{slug}` does not follow it.")
    removed = await rest.remove_label(ctx.client, ctx.repository, ctx.number, label)
    if removed:
        await _record(ctx, "label.remove", label, live)
    customer = await customers.in_installation(ctx.comment.installation_id, slug)
    who = customer.name if customer else f"`{slug}`"
    return Result(
        ok=True,
        reply=f"{who} no longer follows this issue (`{label}` removed).",
        reaction="+1",
        data={"customer": slug},
    )
