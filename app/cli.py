"""The `dispatch` command: serve, worker, migrate, deliveries (and replay), tokens, customers,
sync, kill switch.

Configuration errors print one line naming the variable and exit with status 2; no traceback.
Each command imports what it needs inside its function, so `dispatch --help` and a mistyped
command answer at once instead of loading the whole application first.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from app import __version__
from app.config import ConfigError, Settings, load_settings

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        click.echo(f"dispatch: configuration error: {exc}", err=True)
        sys.exit(2)


def _prepare(settings: Settings) -> str:
    """Logging on, and the database DSN: DATABASE_URL, or the embedded server (started here)."""
    from app import logs
    from app.db import embedded

    logs.configure(settings.log_level)
    if settings.database_url:
        logs.register_secret(_password(settings.database_url))
        return settings.database_url
    dsn = embedded.start(settings.dispatch_data_dir)
    asyncio.run(embedded.ensure_database(dsn))
    return dsn


def _password(dsn: str) -> str | None:
    from urllib.parse import urlsplit

    return urlsplit(dsn).password


async def _with_database(
    dsn: str, settings: Settings, work: Callable[[], Awaitable[T]], *, migrate: bool = True
) -> T:
    from app.db import engine
    from app.db import migrate as migrations

    await engine.connect(dsn, pool_size=min(settings.database_pool_size, 5))
    try:
        if migrate:
            await migrations.migrate()
        return await work()
    finally:
        await engine.disconnect()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
def main() -> None:
    """Dispatch: run AI coding agents on GitHub issues.

    Settings come from the environment (see the README); with no DATABASE_URL an embedded
    PostgreSQL is started in DISPATCH_DATA_DIR.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=3000, show_default=True, type=int, help="TCP port.")
@click.option("--no-worker", is_flag=True, help="Serve HTTP only; run `dispatch worker` elsewhere.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Serve webhooks, the API and pages; run the worker too unless --no-worker."""
    import uvicorn

    from app.server import create_app
    from app.worker import build_runtime

    settings = _settings()
    dsn = _prepare(settings)
    app = create_app(build_runtime(settings), dsn=dsn, run_worker=not no_worker)
    click.echo(f"dispatch {__version__} listening on http://{host}:{port}", err=True)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")


@main.command()
def worker() -> None:
    """Run jobs and schedules from the queue (any number of workers, on any machines)."""
    import gc

    from app.worker import build_runtime, build_worker

    settings = _settings()
    dsn = _prepare(settings)
    rt = build_runtime(settings)

    async def work() -> None:
        gc.collect()
        gc.freeze()  # start-up objects stay for the process's life; keep full collections short
        runner = build_worker(rt)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, runner.stop)
        try:
            await runner.run()
        finally:
            await rt.close()

    asyncio.run(_with_database(dsn, settings, work))


@main.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    from app.db import migrate as migrations

    settings = _settings()
    dsn = _prepare(settings)
    applied = asyncio.run(_with_database(dsn, settings, migrations.migrate, migrate=False))
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.group(invoke_without_command=True)
@click.option("--failed", is_flag=True, help="Only deliveries that failed for good.")
@click.option("--limit", default=30, show_default=True, type=int)
@click.pass_context
def deliveries(ctx: click.Context, failed: bool, limit: int) -> None:
    """List recent webhook deliveries from the journal."""
    if ctx.invoked_subcommand is not None:
        return
    from app.intake import journal

    settings = _settings()
    dsn = _prepare(settings)
    rows = asyncio.run(
        _with_database(dsn, settings, lambda: journal.recent(failed_only=failed, limit=limit))
    )
    if not rows:
        click.echo("no failed deliveries" if failed else "no deliveries yet")
        return
    for row in rows:
        event = f"{row.event}.{row.action}" if row.action else row.event
        line = (
            f"{row.received_at:%Y-%m-%d %H:%M:%S}  {row.guid}  {event:<34} {row.state:<9} "
            f"attempts={row.attempts}  {row.repository or ''}"
        )
        click.echo(line.rstrip())
        if row.last_error and row.state == journal.DeliveryState.FAILED:
            click.echo("    " + row.last_error.strip().splitlines()[-1][:200])


@deliveries.command("replay")
@click.argument("guid")
def deliveries_replay(guid: str) -> None:
    """Run one journaled delivery through its handlers again."""
    from app.intake import journal

    settings = _settings()
    dsn = _prepare(settings)
    found = asyncio.run(_with_database(dsn, settings, lambda: journal.replay(guid)))
    if not found:
        click.echo(f"dispatch: no delivery {guid} in the journal", err=True)
        sys.exit(1)
    click.echo(f"queued {guid} for processing")


@main.group()
def token() -> None:
    """Manage API tokens (shown once; only their hash is stored)."""


@token.command("create")
@click.option("--name", required=True, help="A unique name, e.g. the harness that uses it.")
@click.option("--scope", type=click.Choice(["admin", "agent"]), required=True)
@click.option("--repo", "repos", multiple=True, help="owner/name; repeat; none means all.")
def token_create(name: str, scope: str, repos: tuple[str, ...]) -> None:
    """Create a token and print it once."""
    from app.tokens import service

    settings = _settings()
    dsn = _prepare(settings)
    try:
        value = asyncio.run(
            _with_database(dsn, settings, lambda: service.create(name, scope, list(repos)))
        )
    except service.TokenError as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)
    click.echo(value)
    click.echo("Store it now: it is not shown again.", err=True)


@token.command("list")
def token_list() -> None:
    """List tokens (names, scopes, repositories; never the tokens)."""
    from app.tokens import service

    settings = _settings()
    dsn = _prepare(settings)
    tokens = asyncio.run(_with_database(dsn, settings, service.list_all))
    if not tokens:
        click.echo("no tokens")
    for item in tokens:
        state = f"revoked {item.revoked_at:%Y-%m-%d}" if item.revoked_at else "active"
        used = f"{item.last_used_at:%Y-%m-%d %H:%M}" if item.last_used_at else "never"
        repos = ", ".join(item.repositories) or "all repositories"
        click.echo(f"{item.name:<24} {item.scope:<6} {state:<18} last used {used:<17} {repos}")


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke a token by name."""
    from app.tokens import service

    settings = _settings()
    dsn = _prepare(settings)
    if not asyncio.run(_with_database(dsn, settings, lambda: service.revoke(name))):
        click.echo(f"dispatch: no active token named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked {name}")


@main.group()
def customer() -> None:
    """Manage customers and their portal links (a link is shown once; only its hash is kept)."""


def _customer_work(work: Callable[[], Awaitable[T]]) -> T:
    from app.portal import customers

    settings = _settings()
    dsn = _prepare(settings)
    try:
        return asyncio.run(_with_database(dsn, settings, work))
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

    settings = _settings()
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

    settings = _settings()

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


@main.command()
@click.option("--repo", "repo", default=None, help="owner/name; default: every repository.")
def sync(repo: str | None) -> None:
    """Create missing labels and cache issues (open, and closed in the last 30 days)."""
    from app.installations import service as installations
    from app.issues import onboarding
    from app.worker import build_runtime

    settings = _settings()
    dsn = _prepare(settings)
    rt = build_runtime(settings)

    async def work() -> None:
        try:
            if repo:
                found = await installations.repository_by_name(repo)
                if found is None:
                    click.echo(
                        f"dispatch: {repo} is not a repository the App is installed on", err=True
                    )
                    sys.exit(1)
                targets = [found]
            else:
                targets = await installations.active_repositories()
            for target in targets:
                name = target["full_name"]

                def progress(total: int, name: str = name) -> None:
                    # Pages arrive 100 issues at a time; redraw one status line per page.
                    click.echo(f"\r{name}: {total} issues cached …", nl=False, err=True)

                count = await onboarding.onboard(rt, target["installation_id"], name, progress)
                click.echo(f"\r{name}: {count} issues cached   ")
        finally:
            await rt.close()

    asyncio.run(_with_database(dsn, settings, work))


@main.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--installation", type=int, default=None, help="Only this installation id.")
@click.option("--reason", default=None, help="Shown in every refusal while it is on.")
def killswitch(state: str, installation: int | None, reason: str | None) -> None:
    """Stop (on) or allow again (off) every new agent run; the next decision sees it."""
    import getpass

    from app.agents import gates

    settings = _settings()
    dsn = _prepare(settings)
    asyncio.run(
        _with_database(
            dsn,
            settings,
            lambda: gates.set_kill_switch(
                state == "on", installation_id=installation, reason=reason, by=getpass.getuser()
            ),
        )
    )
    scope = f"installation {installation}" if installation else "every installation"
    click.echo(f"kill switch {state} for {scope}")


if __name__ == "__main__":
    main()
