"""Applies the Piccolo migrations in the top-level `migrations/` folder, once, under a lock.

Every replica runs this on start; a Postgres advisory lock makes the first one migrate while the
others wait and then find nothing to do.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration

import app.config  # noqa: F401  (sets PICCOLO_CONF, which Piccolo's migration runner reads)
from app.db import engine

log = logging.getLogger(__name__)

_PACKAGED = Path(__file__).resolve().parent.parent / "_migrations"
_SOURCE = Path(__file__).resolve().parent.parent.parent / "migrations"
MIGRATIONS_DIR = _PACKAGED if _PACKAGED.is_dir() else _SOURCE

_LOCK_KEY = 0x0D15_7A7C  # arbitrary, constant: "dispatch migrations"


async def migrate() -> list[str]:
    """Apply pending migrations; returns the ids applied by this call. A database that is up to
    date (every start but the first after an upgrade) costs two pooled queries: no connection of
    its own, no lock, no migration run."""
    if not await pending():
        return []
    lock = await asyncpg.connect(engine.dsn())
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        before = set(await _applied(Migration))
        # Piccolo narrates on stdout; keep our output (and JSON logs) clean.
        with contextlib.redirect_stdout(io.StringIO()) as narration:
            result = await run_forwards(app_name="dispatch")
        if not result.success:
            raise RuntimeError(f"migration failed: {result.message}\n{narration.getvalue()}")
        applied = [m for m in await _applied(Migration) if m not in before]
        for migration_id in applied:
            log.info("migration applied", extra={"migration": migration_id})
        return applied
    finally:
        with contextlib.suppress(Exception):
            await lock.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        await lock.close()


async def _applied(migration_table) -> list[str]:  # type: ignore[no-untyped-def]
    if not await migration_table.table_exists():
        return []
    return await migration_table.get_migrations_which_ran(app_name="dispatch")


async def pending() -> list[str]:
    """Migration ids present on disk but not yet applied (for /readyz and `dispatch doctor`)."""
    on_disk = BaseMigrationManager().get_migration_modules(str(MIGRATIONS_DIR))
    done = set(await _applied(Migration))
    return sorted(set(on_disk) - done)


def sql_migration(migration_id: str, description: str, *statements: str, after=None):  # type: ignore[no-untyped-def]
    """A Piccolo migration made of raw SQL statements (run in the migration's transaction).

    `after` is an optional coroutine function run last on the same connection, for steps that
    are code rather than SQL (installing pgqueuer's schema).
    """
    manager = MigrationManager(
        migration_id=migration_id, app_name="dispatch", description=description
    )

    async def run() -> None:
        async with engine.connection() as connection:
            for statement in statements:
                await connection.execute(statement)
            if after is not None:
                await after(connection)

    manager.add_raw(run)
    return manager
