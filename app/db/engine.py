"""One Piccolo engine per process, its asyncpg pool, and raw-connection access.

Piccolo queries and raw asyncpg calls made inside `transaction()` share one connection, so a
delivery's journal row and its queue job (or a handler's writes and the delivery's completion)
commit together.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from pgvector.asyncpg import register_vector
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction


class _LazyPostgresEngine(PostgresEngine):
    """Piccolo's engine connects at construction to check the server version; ours is built at
    import time, before any DSN is known, and gets its pool in `connect()`."""

    async def check_version(self) -> None:
        return None

    async def prep_database(self) -> None:
        return None


DB = _LazyPostgresEngine(config={})


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog", format="text"
    )
    # The vector extension arrives with the first migration; pools opened before it (only
    # during start-up, before `migrate()`) do without the codec.
    with contextlib.suppress(ValueError):
        await register_vector(connection)


def _json_dumps(value: Any) -> str:
    if isinstance(value, str | bytes):
        # Already-serialized JSON (a webhook body) goes in as is: no decode/encode round trip.
        return value.decode() if isinstance(value, bytes) else value
    return msgspec.json.encode(value).decode()


def _json_loads(value: str) -> Any:
    return msgspec.json.decode(value)


# Webhook intake gets connections of its own: jobs that hold theirs while GitHub answers (or
# while the content pacer waits) must never keep a delivery from being acknowledged.
INTAKE_POOL_SIZE = 4
INTAKE_ACQUIRE_TIMEOUT = 5.0
_intake_pool: asyncpg.Pool | None = None

# Short bookkeeping that must commit by itself whatever transaction the caller is in (GitHub
# pacing, caches shared between processes) has a small pool too: it neither waits behind the
# caller's locks nor holds them, and a rollback of the caller cannot undo it (a request already
# sent to GitHub still counts). Its commits do not wait for the disk (`synchronous_commit` off):
# a lock taken for a pacing slot is released a flush sooner, and a database crash could lose
# only the last fraction of a second of such bookkeeping, never make it inconsistent.
AUTONOMOUS_POOL_SIZE = 4
_autonomous_pool: asyncpg.Pool | None = None


async def connect(dsn: str, *, pool_size: int = 20) -> None:
    """Point the engine at `dsn` and open its pools (keeping them if they are open on `dsn` at
    that size already; `disconnect()` first for new connections)."""
    global _intake_pool, _autonomous_pool
    if (
        DB.pool is not None
        and DB.config.get("dsn") == dsn
        and DB.pool.get_max_size() == pool_size
        and not DB.pool.is_closing()
    ):
        return
    await disconnect()
    DB.config = {"dsn": dsn}
    DB.pool = await asyncpg.create_pool(
        dsn=dsn, min_size=1, max_size=pool_size, init=_init_connection
    )
    _intake_pool = await asyncpg.create_pool(
        dsn=dsn, min_size=1, max_size=INTAKE_POOL_SIZE, init=_init_connection
    )
    _autonomous_pool = await asyncpg.create_pool(
        dsn=dsn,
        min_size=1,
        max_size=AUTONOMOUS_POOL_SIZE,
        init=_init_connection,
        server_settings={"synchronous_commit": "off"},
    )


async def disconnect() -> None:
    global _intake_pool, _autonomous_pool
    if DB.pool is not None:
        await DB.close_connection_pool()
    if _intake_pool is not None:
        await _intake_pool.close()
        _intake_pool = None
    if _autonomous_pool is not None:
        await _autonomous_pool.close()
        _autonomous_pool = None


@asynccontextmanager
async def intake_connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection from the intake pool (raises TimeoutError if none frees up in time)."""
    if _intake_pool is None:
        raise RuntimeError("the database is not connected; call app.db.engine.connect() first")
    async with _intake_pool.acquire(timeout=INTAKE_ACQUIRE_TIMEOUT) as pooled:
        yield pooled


@asynccontextmanager
async def autonomous_connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, never the current transaction's: what runs on it commits (or
    not) by itself. Keep its transactions short."""
    if _autonomous_pool is None:
        raise RuntimeError("the database is not connected; call app.db.engine.connect() first")
    async with _autonomous_pool.acquire() as pooled:
        yield pooled


def transaction() -> PostgresTransaction:
    """A transaction that Piccolo queries and `connection()` both join (nested ones are no-ops)."""
    return DB.transaction()


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """The current transaction's connection, or a pooled one for a single statement."""
    current = DB.current_transaction.get()
    if current is not None:
        yield current.connection
        return
    if DB.pool is None:
        raise RuntimeError("the database is not connected; call app.db.engine.connect() first")
    async with DB.pool.acquire() as pooled:
        yield pooled


def dsn() -> str:
    return str(DB.config.get("dsn", ""))
