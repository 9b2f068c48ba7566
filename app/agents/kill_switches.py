"""The kill switch, as operators turn it on and off (`dispatch killswitch`), globally or for one
installation, and the switches that are on now; the gates read it (`gates.kill_switch`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.db import engine


async def set_kill_switch(
    engaged: bool, *, installation_id: int | None, reason: str | None, by: str
) -> None:
    scope = "global" if installation_id is None else f"installation:{installation_id}"
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO kill_switch (scope, engaged, reason, set_by, at) "
            "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (scope) DO UPDATE SET "
            "engaged = EXCLUDED.engaged, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, "
            "at = now()",
            scope,
            engaged,
            reason,
            by,
        )


@dataclass(frozen=True)
class KillSwitch:
    scope: str  # "global" or "installation:<id>"
    reason: str | None
    set_by: str | None
    at: datetime | None


async def engaged_kill_switches() -> list[KillSwitch]:
    """The kill switches that are on now (set with `dispatch killswitch`)."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT scope, reason, set_by, at FROM kill_switch WHERE engaged ORDER BY scope"
        )
    return [KillSwitch(**dict(row)) for row in rows]
