"""The daily budgets' bookkeeping: the spawns each mode has taken today and what is left of them
(a run that spawned nothing gives its spawn back), and an installation's spend today — what its
finished runs reported and what was spent outside runs (a mission's calls to Claude, `charge`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.agents import run_counts
from app.agents.runs import Run
from app.agents.spawn_limits import Limits
from app.db import engine
from app.modes import Mode


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), datetime.min.time(), tzinfo=now.tzinfo)


async def spent_today(installation_id: int, now: datetime) -> float:
    """Today's spend (UTC) of an installation: what its finished runs reported, and every
    charge outside runs (mission planning)."""
    since = _day_start(now)
    async with engine.connection() as connection:
        charged = await connection.fetchval(
            "SELECT coalesce(sum(cost_usd), 0) FROM cost_charge "
            "WHERE installation_id = $1 AND at >= $2",
            installation_id,
            since,
        )
    return await run_counts.spent_since(installation_id, since) + float(charged)


async def charge(
    installation_id: int, cost_usd: float, *, source: str, reference: str, at: datetime
) -> None:
    """Count spend that is not a run's (a mission's call to Claude) against the daily budget."""
    if cost_usd <= 0:
        return
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO cost_charge (installation_id, source, reference, cost_usd, at) "
            "VALUES ($1, $2, $3, $4, $5)",
            installation_id,
            source,
            reference,
            cost_usd,
            at,
        )


async def refund(run: Run, day: datetime) -> None:
    """Give back the budget a run took when nothing was spawned after all."""
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE spawn_budget SET spawned = greatest(spawned - 1, 0) WHERE installation_id = $1 "
            "AND mode = $2 AND day = $3",
            run.installation_id,
            run.mode.value,
            day.date(),
        )


@dataclass(frozen=True)
class BudgetLeft:
    mode: Mode
    spawned: int
    budget: int
    active: int
    concurrency: int


async def budgets_left(
    installation_id: int, limits_by_mode: dict[Mode, Limits], now: datetime
) -> list[BudgetLeft]:
    async with engine.connection() as connection:
        spawned = dict(
            await connection.fetch(
                "SELECT mode, spawned FROM spawn_budget WHERE installation_id = $1 AND day = $2",
                installation_id,
                now.date(),
            )
        )
    active = await run_counts.working_by_mode(installation_id)
    return [
        BudgetLeft(
            mode, spawned.get(mode, 0), limits.daily_spawns, active.get(mode, 0), limits.concurrency
        )
        for mode, limits in limits_by_mode.items()
    ]
