"""What the spawn gates and budgets count: whether a trigger ever started a mode on an issue, the
runs working per mode, and the spend of finished runs.
"""

from __future__ import annotations

from datetime import datetime

from app.agents.runs import Trigger
from app.db import engine
from app.modes import Mode


async def started_by(repository_id: int, issue_number: int, mode: Mode, trigger: Trigger) -> bool:
    """Whether any run of `mode` was ever started on the issue by `trigger`."""
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM run WHERE repository_id = $1 AND issue_number = $2 "
                "AND mode = $3 AND trigger = $4 LIMIT 1",
                repository_id,
                issue_number,
                mode.value,
                trigger.value,
            )
        )


async def working_count(installation_id: int, mode: Mode, *, other_than: int | None = None) -> int:
    """Runs of `mode` dispatched to GitHub and not finished, in one installation."""
    async with engine.connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM run WHERE installation_id = $1 AND mode = $2 "
                "AND state IN ('dispatched', 'running') AND ($3::bigint IS NULL OR id <> $3)",
                installation_id,
                mode.value,
                other_than,
            )
        )


async def working_by_mode(installation_id: int) -> dict[str, int]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT mode, count(*) FROM run WHERE installation_id = $1 "
            "AND state IN ('dispatched', 'running') GROUP BY mode",
            installation_id,
        )
    return {row["mode"]: int(row["count"]) for row in rows}


async def spent_since(installation_id: int, since: datetime) -> float:
    """Agent spend reported by runs of an installation that finished since `since`."""
    async with engine.connection() as connection:
        return float(
            await connection.fetchval(
                "SELECT coalesce(sum(cost_usd), 0) FROM run WHERE installation_id = $1 "
                "AND finished_at >= $2",
                installation_id,
                since,
            )
        )
