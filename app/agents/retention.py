"""How long runs keep their terminal output.

A run's log chunks are kept `RUN_LOG_RETENTION_DAYS` after the run ended, then dropped; the run
itself (state, events, plan, cost, turns, summary, PR) stays, marked `log_expired_at`, and the
viewer says the log has expired instead of showing an empty page. A run that has not ended keeps
its log however long it has been going. Spawn decisions are forgotten after
`SPAWN_DECISION_RETENTION_DAYS` (`spawn_decisions.prune_decisions`).
"""

from __future__ import annotations

from datetime import datetime

from app.agents import run_log_expiry, spawn_decisions
from app.db import pruning
from app.stream import chunks

# Runs whose logs one pass collects before it drops them (their chunks go `batch` at a time).
RUNS_PER_PASS = 50


async def expire_logs(
    cutoff: datetime, now: datetime, *, batch: int, dry_run: bool = False
) -> pruning.Pruned:
    """Drop the logs of runs that ended before `cutoff`; `rows` counts the chunks."""
    what = "run log chunks"
    if dry_run:
        due = await run_log_expiry.logs_due(cutoff)
        count, size = await chunks.held_by(due) if due else (0, 0)
        return pruning.Pruned(what, count, size, cutoff)
    dropped = 0
    while due := await run_log_expiry.logs_due(cutoff, RUNS_PER_PASS):
        dropped += await chunks.drop(due, batch=batch)
        # Marked after the chunks are gone: a prune that dies half-way leaves the runs due.
        await run_log_expiry.mark_log_expired(due, now)
        if len(due) < RUNS_PER_PASS:
            break
    return pruning.Pruned(what, dropped, None, cutoff)


async def oldest() -> dict[str, datetime | None]:
    """When the run whose log is kept longest ended, and the oldest spawn decision."""
    return {
        "run_logs": await run_log_expiry.oldest_kept_log_end(),
        "spawn_decisions": await spawn_decisions.oldest_decision(),
    }
