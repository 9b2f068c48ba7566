"""Operators' levers: the kill switch, pruning now, moving the database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from app.cli.bootstrap import prepare, settings_or_exit, with_database
from app.cli.output import human_bytes


@click.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--installation", type=int, default=None, help="Only this installation id.")
@click.option("--reason", default=None, help="Shown in every refusal while it is on.")
def killswitch(state: str, installation: int | None, reason: str | None) -> None:
    """Stop (on) or allow again (off) every new agent run; the next decision sees it."""
    import getpass

    from app.agents import kill_switches

    settings = settings_or_exit()
    dsn = prepare(settings)
    asyncio.run(
        with_database(
            dsn,
            settings,
            lambda: kill_switches.set_kill_switch(
                state == "on", installation_id=installation, reason=reason, by=getpass.getuser()
            ),
        )
    )
    scope = f"installation {installation}" if installation else "every installation"
    click.echo(f"kill switch {state} for {scope}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
def prune(dry_run: bool) -> None:
    """Remove what is past its retention window now (the job on PRUNE_SCHEDULE does it too)."""
    from app.retention import service as retention
    from app.runtime import Runtime

    settings = settings_or_exit()
    dsn = prepare(settings)
    rt = Runtime.build(settings)

    async def work() -> retention.Report:
        try:
            return await retention.prune(rt, dry_run=dry_run)
        finally:
            await rt.close()

    report = asyncio.run(with_database(dsn, settings, work))
    verb = "would remove" if dry_run else "removed"
    for pruned in report.pruned:
        size = f"  {human_bytes(pruned.bytes)}" if pruned.bytes else ""
        before = f"  (older than {pruned.cutoff:%Y-%m-%d %H:%M} UTC)" if pruned.cutoff else ""
        click.echo(f"{pruned.what:<20} {verb} {pruned.rows:>9,}{size}{before}")
    if settings.audit_retention_days is None:
        click.echo(f"{'audit entries':<20} kept for good (AUDIT_RETENTION_DAYS is not set)")
    for step in report.failed:
        click.echo(f"dispatch: pruning {step} failed (see the log)", err=True)
    if report.failed:
        sys.exit(1)


@click.group()
def db() -> None:
    """Move the database: dump it to a file, restore a dump into an empty database.

    The database is DATABASE_URL, or the embedded one in DISPATCH_DATA_DIR (started if needed).
    """


@db.command("dump")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def db_dump(file: Path) -> None:
    """Write the whole database to FILE (pg_dump custom format, no owners or privileges)."""
    from app.db import dump

    settings = settings_or_exit()
    dsn = prepare(settings)
    try:
        size = dump.dump(dsn, file)
    except dump.DumpError as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)
    click.echo(f"dumped the database to {file} ({human_bytes(size)})")


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def db_restore(file: Path) -> None:
    """Load a dump made by `dispatch db dump` into the (empty) database, in one transaction."""
    from app.db import dump

    settings = settings_or_exit()
    dsn = prepare(settings)
    existing = asyncio.run(dump.tables(dsn))
    if existing:
        click.echo(
            f"dispatch: the target database already has {existing} tables; restore into an "
            "empty database",
            err=True,
        )
        sys.exit(1)
    try:
        dump.restore(dsn, file)
    except dump.DumpError as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)
    asyncio.run(dump.analyze(dsn))
    click.echo(f"restored {file} into {dump.without_password(dsn)[0]}")
