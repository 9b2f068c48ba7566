"""When runs' logs expire: the finished runs whose log is due to be dropped, marking it dropped,
and how old the oldest kept log is (retention's report).
"""

from __future__ import annotations

from datetime import datetime

from app.agents.runs import ACTIVE_SQL
from app.db import engine


async def logs_due(ended_before: datetime, limit: int | None = None) -> list[int]:
    """Finished runs that ended before `ended_before` and still have their log, oldest first
    (all of them when `limit` is None). Active runs never appear, however old: their log is
    still being written."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT id FROM run WHERE log_expired_at IS NULL AND finished_at IS NOT NULL "
            f"AND finished_at < $1 AND state NOT IN {ACTIVE_SQL} ORDER BY finished_at LIMIT $2",
            ended_before,
            limit,
        )
    return [row["id"] for row in rows]


async def mark_log_expired(run_ids: list[int], at: datetime) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE run SET log_expired_at = $2 WHERE id = ANY($1) AND log_expired_at IS NULL",
            run_ids,
            at,
        )


async def oldest_kept_log_end() -> datetime | None:
    """When the run whose log has been kept longest ended."""
    async with engine.connection() as connection:
        return await connection.fetchval(
            "SELECT min(finished_at) FROM run WHERE log_expired_at IS NULL "
            "AND finished_at IS NOT NULL"
        )
