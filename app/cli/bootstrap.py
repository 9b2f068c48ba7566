"""How a command starts: the settings (a configuration error is one line and exit status 2),
logging and the database (DATABASE_URL, or the embedded server, released when the process ends),
the runtime, and a database connection for one piece of work."""

from __future__ import annotations

import asyncio
import atexit
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from app.config import ConfigError, Settings, environment_warnings, load_settings, warnings_for

if TYPE_CHECKING:
    from app.runtime import Runtime

T = TypeVar("T")


def settings_or_exit() -> Settings:
    """The settings, or one line naming the bad variable and exit status 2."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"dispatch: configuration error: {exc}", err=True)
        sys.exit(2)
    for warning in [*environment_warnings(), *warnings_for(settings)]:
        click.echo(f"dispatch: warning: {warning}", err=True)
    return settings


def runtime_or_exit(settings: Settings) -> Runtime:
    """The process's runtime; a bad secret key file (or another setting found wrong while
    building it) is a configuration error like any other."""
    from app.worker import build_runtime

    try:
        return build_runtime(settings)
    except ConfigError as exc:
        click.echo(f"dispatch: configuration error: {exc}", err=True)
        sys.exit(2)


def prepare(settings: Settings) -> str:
    """Logging on, and the database DSN: DATABASE_URL, or the embedded server (started here)."""
    from app import logs
    from app.db import embedded

    logs.configure(settings.log_level)
    if settings.database_url:
        return settings.database_url
    server = embedded.start(settings.dispatch_data_dir)
    # Last thing before the process ends, whichever way the command ends (serve and worker
    # never end by a signal's default action: `StopSignals` turns signals into a clean stop).
    atexit.register(server.release)
    asyncio.run(embedded.ensure_database(server.dsn))
    return server.dsn


async def with_database(
    dsn: str,
    settings: Settings,
    work: Callable[[], Awaitable[T]],
    *,
    migrate: bool = True,
    pool_size: int = 5,
) -> T:
    """`work` with the database connected (at most `pool_size` connections; one-off commands
    need few) and, unless told otherwise, migrated."""
    from app.db import engine
    from app.db import migrate as migrations

    await engine.connect(dsn, pool_size=min(settings.database_pool_size, pool_size))
    try:
        if migrate:
            await migrations.migrate()
        return await work()
    finally:
        await engine.disconnect()
