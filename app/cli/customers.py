"""`dispatch customer`: customers, their portal links (shown once) and their health."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from app.cli.bootstrap import prepare, settings_or_exit, with_database

T = TypeVar("T")


@click.group()
def customer() -> None:
    """Manage customers and their portal links (a link is shown once; only its hash is kept)."""


def _customer_work(work: Callable[[], Awaitable[T]]) -> T:
    from app.portal import customers

    settings = settings_or_exit()
    dsn = prepare(settings)
    try:
        return asyncio.run(with_database(dsn, settings, work))
    except customers.CustomerError as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)


@customer.command("create")
@click.option("--installation", type=int, required=True, help="The installation id.")
@click.option("--name", required=True, help='The customer\'s name, e.g. "Acme Corp".')
@click.option("--slug", default=None, help="Its label is customer/<slug>; default: from the name.")
@click.option("--color", default=None, help="Brand colour, #rrggbb (default #0366d6).")
@click.option("--logo", default=None, help="An https:// URL of the customer's logo.")
def customer_create(
    installation: int, name: str, slug: str | None, color: str | None, logo: str | None
) -> None:
    """Create a customer and print its portal link once."""
    import getpass

    from app.portal import customers

    settings = settings_or_exit()
    created, token = _customer_work(
        lambda: customers.create(
            installation, name, slug=slug, color=color, logo_url=logo, actor=getpass.getuser()
        )
    )
    click.echo(customers.portal_url(settings.dispatch_url, created.slug, token))
    click.echo(
        f"Customer {created.slug!r} created; label issues `{created.label}` (or comment "
        f"`/dispatch watch {created.slug}`). Store the link now: it is not shown again.",
        err=True,
    )


@customer.command("list")
@click.option("--installation", type=int, default=None, help="Only this installation id.")
def customer_list(installation: int | None) -> None:
    """List customers with the health of their issues (never their links)."""
    from app.clock import SystemClock
    from app.portal import customers, health

    async def work() -> list[tuple[customers.Customer, health.Health]]:
        now = SystemClock().now()
        return [(c, await health.of(c, now)) for c in await customers.list_all(installation)]

    found = _customer_work(work)
    if not found:
        click.echo("no customers")
        return
    click.echo(
        f"{'slug':<20} {'installation':>12}  {'name':<24} {'score':>5} {'open':>5} {'crit':>5} "
        f"{'stale':>5} {'crit-stale':>10} {'unresp':>6}  {'median 1st reply':>16}  last activity"
    )
    for item, stats in found:
        median = (
            f"{stats.median_first_response_hours:.1f} h"
            if stats.median_first_response_hours is not None
            else "—"
        )
        last = f"{stats.last_activity:%Y-%m-%d %H:%M}" if stats.last_activity else "never"
        click.echo(
            f"{item.slug:<20} {item.installation_id:>12}  {item.name[:24]:<24} {stats.score:>5} "
            f"{stats.open:>5} {stats.critical:>5} {stats.stale:>5} {stats.critical_stale:>10} "
            f"{stats.unresponded:>6}  {median:>16}  {last}"
        )


@customer.command("rotate-token")
@click.argument("slug")
@click.option("--installation", type=int, default=None, help="When several have this slug.")
def customer_rotate_token(slug: str, installation: int | None) -> None:
    """Give the customer a new portal link (printed once); the old one stops working now."""
    import getpass

    from app.portal import customers

    settings = settings_or_exit()

    async def work() -> tuple[str, str]:
        found = await customers.find(slug, installation)
        return found.slug, await customers.rotate_token(found, actor=getpass.getuser())

    found_slug, token = _customer_work(work)
    click.echo(customers.portal_url(settings.dispatch_url, found_slug, token))
    click.echo("The old link no longer works. Store this one now: it is not shown again.", err=True)


@customer.command("delete")
@click.argument("slug")
@click.option("--installation", type=int, default=None, help="When several have this slug.")
def customer_delete(slug: str, installation: int | None) -> None:
    """Delete a customer: its portal link stops working at once (labels stay on the issues)."""
    import getpass

    from app.portal import customers

    async def work() -> None:
        found = await customers.find(slug, installation)
        await customers.delete(found, actor=getpass.getuser())

    _customer_work(work)
    click.echo(f"deleted customer {slug}")
