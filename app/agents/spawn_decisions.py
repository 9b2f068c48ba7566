"""The spawn gates' decisions, stored with their reasons: what a refused caller is told, whether a
budget refusal for an error still holds (later alerts of it then wait), and their pruning."""

from __future__ import annotations

from datetime import datetime

from app.agents.gates import Decision
from app.agents.runs import Run
from app.db import engine, pruning
from app.modes import Mode


async def record(
    run: Run | None,
    decision: Decision,
    *,
    installation_id: int | None = None,
    mode: Mode | None = None,
    fingerprint: str | None = None,
) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO spawn_decision (run_id, installation_id, mode, gate, allowed, reason, "
            "clears_at, fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            run.id if run else None,
            run.installation_id if run else installation_id,
            (run.mode if run else Mode(mode or Mode.INVESTIGATE)).value,
            decision.gate,
            decision.allowed,
            decision.reason,
            decision.clears_at,
            run.fingerprint if run else fingerprint,
        )


# Refusals that clear on their own (a run finishes, a new day starts).
_BUDGET_GATES = ["concurrency", "daily_spawn_budget", "daily_cost_budget"]


async def refused_recently(fingerprint: str, now: datetime) -> bool:
    """Whether a budget gate refused a run for this error and has not cleared yet: later alerts
    of the same error then wait instead of adding a refusal each."""
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM spawn_decision WHERE fingerprint = $1 AND NOT allowed "
                "AND gate = ANY($2) AND coalesce(clears_at, at + interval '10 minutes') > $3 "
                "LIMIT 1",
                fingerprint,
                _BUDGET_GATES,
                now,
            )
        )


# A refusal still in force is kept whatever its age: `refused_recently` reads it.
_PRUNE_DECISIONS = """
DELETE FROM spawn_decision
WHERE id IN (
    SELECT id FROM spawn_decision
    WHERE at < $2 AND (clears_at IS NULL OR clears_at < $3)
    ORDER BY at LIMIT $1
    FOR UPDATE SKIP LOCKED
)
"""


async def prune_decisions(
    cutoff: datetime, now: datetime, *, batch: int, dry_run: bool = False
) -> pruning.Pruned:
    """Forget decisions made before `cutoff` (the run keeps its refusal reason)."""
    what = "spawn decisions"
    if dry_run:
        rows, size = await pruning.estimate(
            "SELECT count(*), sum(pg_column_size(spawn_decision.*)) FROM spawn_decision "
            "WHERE at < $1 AND (clears_at IS NULL OR clears_at < $2)",
            cutoff,
            now,
        )
        return pruning.Pruned(what, rows, size, cutoff)
    rows = await pruning.in_batches(_PRUNE_DECISIONS, cutoff, now, batch=batch)
    return pruning.Pruned(what, rows, None, cutoff)


async def oldest_decision() -> datetime | None:
    async with engine.connection() as connection:
        return await connection.fetchval("SELECT min(at) FROM spawn_decision")


async def last_decision(run_id: int) -> Decision | None:
    """The gates' latest decision about a run (what a refused API caller is told)."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT gate, allowed, reason, clears_at FROM spawn_decision WHERE run_id = $1 "
            "ORDER BY id DESC LIMIT 1",
            run_id,
        )
    if row is None:
        return None
    return Decision(row["allowed"], row["gate"], row["reason"], row["clears_at"])
