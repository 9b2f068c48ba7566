"""Bookmarks for scheduled passes ("how far did the last sweep read?"), one row per name in
`sweep_state`, shared by every replica."""

from __future__ import annotations

from datetime import datetime

from app.db import engine


async def last_run(name: str) -> datetime | None:
    async with engine.connection() as connection:
        return await connection.fetchval(
            "SELECT last_run_at FROM sweep_state WHERE name = $1", name
        )


async def save_run(name: str, at: datetime) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO sweep_state (name, last_run_at) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at",
            name,
            at,
        )
