"""Whether a run's agent is alive: each piece of its output marks it seen (a dispatched run is
then running), and the watchdog asks for the active runs nobody has heard from since a cutoff.
"""

from __future__ import annotations

from datetime import datetime

from app.agents.runs import Run
from app.db import engine


async def mark_seen(run_id: int, now: datetime) -> None:
    """The agent is alive (it just sent output): a dispatched run is now running."""
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE run SET last_seen_at = $2, state = CASE WHEN state = 'dispatched' "
            "THEN 'running' ELSE state END, started_at = coalesce(started_at, $2) "
            "WHERE id = $1 AND (state = 'dispatched' OR (state = 'running' AND "
            # Log chunks arrive every few seconds; the watchdog needs minutes, not every one.
            "(last_seen_at IS NULL OR last_seen_at < $2::timestamptz - interval '15 seconds')))",
            run_id,
            now,
        )


async def silent_since(cutoff: datetime) -> list[Run]:
    """Active runs dispatched to GitHub that nobody has heard from since `cutoff`."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM run WHERE state IN ('dispatched', 'running') "
            "AND coalesce(last_seen_at, dispatch_sent_at, dispatched_at, created_at) < $1",
            cutoff,
        )
    return [Run.from_row(row) for row in rows]
