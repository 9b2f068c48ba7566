"""`dispatch doctor`: check an install and say what to fix."""

from __future__ import annotations

import asyncio
import atexit
import sys
from typing import Any

import click

from app.cli.output import Progress
from app.config import ConfigError, Settings, load_settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
def doctor(as_json: bool) -> None:
    """Check the install and say what to fix: configuration, the data directory's disk, the
    database, the GitHub App, every installation and repository.

    One line per check (✓, ⚠ or ✗ and the fix); exits 1 on any ✗. Progress goes to stderr."""
    import json

    from app.doctor import checks, report

    loaded: Settings | ConfigError
    try:
        loaded = load_settings()
    except ConfigError as exc:
        loaded = exc
    found = checks.configuration(loaded)
    if isinstance(loaded, Settings):
        found += checks.storage(loaded)
        found += _doctor_walk(loaded)
    if as_json:
        click.echo(json.dumps(report.as_json(found), indent=2, ensure_ascii=False))
    else:
        for line in checks.lines(found):
            click.echo(line)
        click.echo(report.summary(found))
    if not report.healthy(found):
        sys.exit(1)


def _doctor_walk(settings: Settings) -> list[Any]:
    """The checks that need the database and GitHub (quiet logs: the findings say it all)."""
    from app import logs
    from app.db import embedded, engine
    from app.doctor import checks
    from app.runtime import Runtime

    logs.configure("DEBUG" if settings.log_level == "DEBUG" else "ERROR")
    try:
        if settings.database_url:
            dsn = settings.database_url
        else:
            server = embedded.start(settings.dispatch_data_dir)
            atexit.register(server.release)
            asyncio.run(embedded.ensure_database(server.dsn))
            dsn = server.dsn
    except Exception as exc:
        return [checks.unreachable_database(exc, settings)]
    shown = Progress()

    def progress(done: int, total: int, name: str) -> None:
        milestone = done == 1 or done == total or done % 10 == 0
        shown.update(f"checking repositories: {done} of {total} ({name})", milestone=milestone)

    async def walk() -> list[Any]:
        try:
            await engine.connect(dsn, pool_size=2)
        except Exception as exc:
            return [checks.unreachable_database(exc, settings)]
        try:
            rt = Runtime.build(settings)
        except ConfigError as exc:
            await engine.disconnect()
            return checks.configuration(exc)
        try:
            return await checks.examine(rt, progress)
        finally:
            shown.clear()
            await rt.close()
            await engine.disconnect()

    return asyncio.run(walk())
