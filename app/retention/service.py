"""Pruning every area's old rows in one pass, and measuring what the database holds.

`prune()` runs the steps below in order, each on its own window (a setting in days) counted back
from the app's clock; each step deletes in small batches of its own short transactions (see
`app/db/pruning.py`), so intake and jobs keep running while it works. A step that fails is logged
and reported, and the next one still runs. It is the scheduled job `storage.prune`
(`PRUNE_SCHEDULE`) and `dispatch prune [--dry-run]`.

`StorageMetrics` feeds `/metrics`: the size of every table (with its indexes and TOAST) and the
age of the oldest row kept of each kind of retained data, measured at most once a minute (one
catalog query and a handful of index lookups).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app import queue
from app.agents import retention as agent_retention
from app.agents import spawn_decisions
from app.audit import log as audit
from app.clock import Clock
from app.db import engine
from app.db.pruning import Pruned
from app.health.metrics import DATABASE_BYTES, OLDEST_KEPT_AGE, TABLE_BYTES
from app.intake import retention as intake_retention
from app.portal import access as portal_access
from app.runtime import Runtime

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[Pruned | list[Pruned]]]


@dataclass
class Report:
    pruned: list[Pruned] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _steps(rt: Runtime, now: datetime, dry_run: bool) -> list[tuple[str, Step]]:
    settings = rt.settings
    batch = settings.prune_batch_size

    def before(days: int) -> datetime:
        return now - timedelta(days=days)

    steps: list[tuple[str, Step]] = [
        (
            "delivery payloads",
            lambda: intake_retention.drop_payloads(
                before(settings.delivery_retention_days), now, batch=batch, dry_run=dry_run
            ),
        ),
        (
            "delivery rows",
            lambda: intake_retention.delete_rows(
                before(settings.delivery_row_retention_days), batch=batch, dry_run=dry_run
            ),
        ),
        (
            "run logs",
            lambda: agent_retention.expire_logs(
                before(settings.run_log_retention_days), now, batch=batch, dry_run=dry_run
            ),
        ),
        (
            "spawn decisions",
            lambda: spawn_decisions.prune_decisions(
                before(settings.spawn_decision_retention_days), now, batch=batch, dry_run=dry_run
            ),
        ),
        ("portal rate windows", lambda: portal_access.prune(batch=batch, dry_run=dry_run)),
        (
            "queue history",
            lambda: queue.prune_history(
                before(settings.queue_history_retention_days), batch=batch, dry_run=dry_run
            ),
        ),
    ]
    audit_days = settings.audit_retention_days
    if audit_days is not None:
        steps.append(
            (
                "audit entries",
                lambda: audit.prune(before(audit_days), batch=batch, dry_run=dry_run),
            )
        )
    return steps


async def prune(rt: Runtime, *, dry_run: bool = False) -> Report:
    """Remove (or, with `dry_run`, count) everything past its retention window."""
    now = rt.clock.now()
    report = Report()
    for name, step in _steps(rt, now, dry_run):
        started = time.monotonic()
        try:
            outcome = await step()
        except Exception:
            log.exception("prune step failed", extra={"step": name})
            report.failed.append(name)
            continue
        for pruned in outcome if isinstance(outcome, list) else [outcome]:
            report.pruned.append(pruned)
            if pruned.rows or not dry_run:
                log.info(
                    "would prune" if dry_run else "pruned",
                    extra={
                        "what": pruned.what,
                        "rows": pruned.rows,
                        "before": pruned.cutoff.isoformat() if pruned.cutoff else None,
                        "seconds": round(time.monotonic() - started, 3),
                    },
                )
    return report


async def table_sizes() -> dict[str, int]:
    """Bytes on disk of every table of the database's schema, with its indexes and TOAST."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) AS size FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()"
        )
    return {row["relname"]: int(row["size"]) for row in rows}


async def database_size() -> int:
    async with engine.connection() as connection:
        return int(await connection.fetchval("SELECT pg_database_size(current_database())"))


async def oldest_kept() -> dict[str, datetime | None]:
    """The time each kind of retained data counts its age from, for its oldest row kept."""
    return {
        **await intake_retention.oldest(),
        **await agent_retention.oldest(),
        "queue_history": await queue.oldest_history(),
        "audit_entries": await audit.oldest(),
    }


class StorageMetrics:
    """Sets the storage gauges of `/metrics`, at most once every `every` seconds."""

    def __init__(self, clock: Clock, every: float = 60.0) -> None:
        self.clock = clock
        self.every = every
        self._measured_at: float | None = None

    async def refresh(self) -> None:
        if self._measured_at is not None and time.monotonic() - self._measured_at < self.every:
            return
        self._measured_at = time.monotonic()
        try:
            sizes = await table_sizes()
            total = await database_size()
            oldest = await oldest_kept()
        except Exception as exc:
            log.warning("storage metrics unavailable", extra={"error": f"{exc!r}"})
            return
        for table, size in sizes.items():
            TABLE_BYTES.labels(table).set(size)
        DATABASE_BYTES.set(total)
        now = self.clock.now()
        for data, at in oldest.items():
            OLDEST_KEPT_AGE.labels(data).set(max(0.0, (now - at).total_seconds()) if at else 0.0)
