"""The Piccolo table classes (the audit log's) agree with the database `migrations/` builds
(tables, columns, types, nullability), and migrating is idempotent."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from piccolo.columns import (
    JSONB,
    Array,
    BigInt,
    BigSerial,
    Boolean,
    Column,
    Integer,
    Text,
    Timestamptz,
)
from piccolo.table import Table

from app.audit.log import AuditLog
from app.db import engine, migrate

# Piccolo column class -> (information_schema data_type, udt_name) in Postgres.
POSTGRES_TYPES: dict[type[Column], tuple[str, str]] = {
    Text: ("text", "text"),
    BigInt: ("bigint", "int8"),
    BigSerial: ("bigint", "int8"),
    Integer: ("integer", "int4"),
    Boolean: ("boolean", "bool"),
    Timestamptz: ("timestamp with time zone", "timestamptz"),
    JSONB: ("jsonb", "jsonb"),
}

TABLES: list[type[Table]] = [AuditLog]


def expected_type(column: Column) -> tuple[str, str]:
    if isinstance(column, Array):
        _, element = expected_type(column.base_column)
        return "ARRAY", f"_{element}"
    kind = type(column)
    if kind not in POSTGRES_TYPES:
        pytest.fail(f"no Postgres type known for {kind.__name__}; add it to POSTGRES_TYPES")
    return POSTGRES_TYPES[kind]


async def database_columns(table: str) -> dict[str, dict]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            """
            SELECT column_name, data_type, udt_name, is_nullable
            FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = $1
            """,
            table,
        )
    return {row["column_name"]: dict(row) for row in rows}


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table._meta.tablename)
async def test_table_class_matches_the_migrated_table(database, table):
    in_database = await database_columns(table._meta.tablename)

    assert in_database, f"table {table._meta.tablename} does not exist"
    mismatches = []
    for column in table._meta.columns:
        name = column._meta.db_column_name
        found = in_database.get(name)
        if found is None:
            mismatches.append(f"{name}: missing")
            continue
        actual = (found["data_type"], found["udt_name"])
        if actual != expected_type(column):
            mismatches.append(f"{name}: {type(column).__name__} but {'/'.join(actual)}")
        if (found["is_nullable"] == "YES") != column._meta.null:
            mismatches.append(f"{name}: null={column._meta.null} in the class, not in the table")
    assert mismatches == []


async def test_migrating_a_migrated_database_applies_nothing(database):
    assert await migrate.migrate() == []
    assert await migrate.pending() == []


async def test_an_up_to_date_database_starts_without_waiting_for_the_migration_lock(database):
    """A replica starting while another holds the migration lock (say, mid-upgrade of another
    schema step) is not held up when it has nothing to apply."""
    holder = await asyncpg.connect(database)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", migrate._LOCK_KEY)
        assert await asyncio.wait_for(migrate.migrate(), timeout=10) == []
    finally:
        await holder.close()


async def test_connecting_again_to_the_same_database_keeps_its_pools(database):
    pool = engine.DB.pool
    await engine.connect(database, pool_size=pool.get_max_size())
    assert engine.DB.pool is pool  # kept: no new connections
    await engine.connect(database, pool_size=pool.get_max_size() + 1)
    assert engine.DB.pool is not pool and pool.is_closing()
    async with engine.connection() as connection:
        assert await connection.fetchval("SELECT 1") == 1


async def test_migrations_apply_once_from_scratch(pg_server):
    name = f"test_scratch_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await engine.connect(urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}")), pool_size=2)
        try:
            before = await migrate.pending()
            first = await migrate.migrate()
            second = await migrate.migrate()
            after = await migrate.pending()
        finally:
            await engine.disconnect()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()

    assert sorted(first) == sorted(before)
    assert len(first) == len(list(migrate.MIGRATIONS_DIR.glob("dispatch_*.py")))
    assert second == []
    assert after == []


async def test_vector_extension_is_installed(database):
    async with engine.connection() as connection:
        installed = await connection.fetchval(
            "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
        )

    assert installed == 1
