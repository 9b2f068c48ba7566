"""The error context an `auto_investigate` run's brief carries: what the error says, where it
comes from, how often and since when, with its stack and sample lines."""

from __future__ import annotations

from typing import Any

from app.db import engine


async def error_context(fingerprint: str) -> dict[str, Any] | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT fingerprint, source, feature, message, normalized, severity, event_count, "
            "first_seen, last_seen, stack, samples, links, last_release FROM alert_error "
            "WHERE fingerprint = $1",
            fingerprint,
        )
    if row is None:
        return None
    data = dict(row)
    data["first_seen"] = data["first_seen"].isoformat()
    data["last_seen"] = data["last_seen"].isoformat()
    return data
