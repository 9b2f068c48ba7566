"""Deleting old rows without getting in anyone's way.

A prune is one statement run again and again, each time on at most `batch` rows, each time in its
own short transaction, until it finds nothing more to do. The statement picks its rows with
`FOR UPDATE SKIP LOCKED`, so a row that a delivery job or an intake transaction holds is left for
the next prune instead of waited for; a batch that still has to wait for a lock gives up after
`LOCK_TIMEOUT` rather than queue others behind it. No lock outlives its batch, and a short pause
between batches gives the table back to intake and jobs.

Each area writes its own statements (it owns its tables); this module only runs them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.db import engine

PAUSE_SECONDS = 0.02
LOCK_TIMEOUT = "2s"


@dataclass(frozen=True)
class Pruned:
    """What one prune step removed (or, in a dry run, would remove)."""

    what: str
    rows: int
    bytes: int | None = None
    cutoff: datetime | None = None


async def in_batches(statement: str, *args: Any, batch: int, pause: float = PAUSE_SECONDS) -> int:
    """Run `statement` until a run touches fewer than `batch` rows; returns the rows touched.

    The statement takes the batch size as `$1` (then `args` as `$2` …) and must touch at most
    that many rows (a `LIMIT $1` subquery with `FOR UPDATE SKIP LOCKED`)."""
    if engine.DB.current_transaction.get() is not None:
        # Inside a caller's transaction every batch's locks would last until that commits.
        raise RuntimeError("pruning must not run inside a transaction")
    total = 0
    while True:
        async with engine.connection() as connection, connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            status = await connection.execute(statement, batch, *args)
        touched = int(status.rsplit(" ", 1)[-1])
        total += touched
        if touched < batch:
            return total
        await asyncio.sleep(pause)


async def estimate(query: str, *args: Any) -> tuple[int, int | None]:
    """(rows, bytes) from a dry run's `SELECT count(*), sum(<size>)` query."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(query, *args)
    assert row is not None
    return int(row[0]), (int(row[1]) if row[1] is not None else None)
