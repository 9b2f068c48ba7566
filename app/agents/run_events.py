"""What an agent reported during a run (`run_event` rows): recorded as its output arrives, read
back oldest first for the run's page and the read API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.db import engine


@dataclass(frozen=True)
class RunEvent:
    id: int
    type: str
    body: dict[str, Any]
    at: datetime


async def events(run_id: int) -> list[RunEvent]:
    """What the agent reported, oldest first."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT id, type, body, at FROM run_event WHERE run_id = $1 ORDER BY id", run_id
        )
    return [RunEvent(**dict(row)) for row in rows]


async def record_event(run_id: int, kind: str, body: dict[str, Any]) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO run_event (run_id, type, body) VALUES ($1, $2, $3)", run_id, kind, body
        )
