"""Writing and reading audit entries. Writes join the caller's transaction, so an entry exists
exactly when the change it describes was committed. The trail is kept for good unless
AUDIT_RETENTION_DAYS says otherwise (`prune`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from piccolo.columns import JSONB, BigInt, BigSerial, Integer, Text, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.db import engine, pruning
from app.db.engine import DB


class AuditLog(Table, db=DB):
    """Every change Dispatch makes or refuses, with who asked and why."""

    id = BigSerial(primary_key=True)
    at = Timestamptz(default=TimestamptzNow())
    actor = Text()
    action = Text()
    target = Text()
    installation_id = BigInt(null=True, default=None)
    repository = Text(null=True, default=None)
    issue_number = Integer(null=True, default=None)
    before = JSONB(null=True, default=None)
    after = JSONB(null=True, default=None)
    outcome = Text()
    reason = Text(null=True, default=None)
    delivery_guid = Text(null=True, default=None)


class Outcome(StrEnum):
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"
    SKIPPED = "skipped"


async def record(
    *,
    actor: str,
    action: str,
    target: str | None = None,
    outcome: Outcome = Outcome.DONE,
    installation_id: int | None = None,
    repository: str | None = None,
    issue_number: int | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    delivery: str | None = None,
) -> None:
    """One audit entry. Its `target` is `owner/name#number` for an entry about an issue (given
    `repository` and `issue_number`), unless another is given."""
    if target is None:
        if repository is None or issue_number is None:
            raise ValueError("an audit entry needs a target, or a repository and issue number")
        target = f"{repository}#{issue_number}"
    await AuditLog.insert(
        AuditLog(
            actor=actor,
            action=action,
            target=target,
            outcome=outcome.value,
            installation_id=installation_id,
            repository=str(repository) if repository is not None else None,
            issue_number=issue_number,
            before=before,
            after=after,
            reason=reason,
            delivery_guid=delivery,
        )
    )


async def entries(
    *, repository: str | None = None, issue_number: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = AuditLog.select().order_by(AuditLog.id, ascending=False).limit(limit)
    if repository is not None:
        # An exact (case-insensitive) name, never a pattern: `%` must not match every repository.
        query = query.where(AuditLog.repository.ilike(_literal(repository)))
    if issue_number is not None:
        query = query.where(AuditLog.issue_number == issue_number)
    return await query.run()


async def for_issue(
    repository: str, issue_number: int, actions: list[str], *, limit: int = 200
) -> list[dict[str, Any]]:
    """Entries of some actions about one issue, oldest first (what a timeline reads)."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT at, actor, action, after, outcome FROM audit_log "
            "WHERE lower(repository) = lower($1) AND issue_number = $2 AND action = ANY($3) "
            "ORDER BY at, id LIMIT $4",
            repository,
            issue_number,
            actions,
            limit,
        )
    return [dict(row) for row in rows]


def _literal(text: str) -> str:
    """`text` as an ILIKE pattern that matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_PRUNE = """
DELETE FROM audit_log
WHERE id IN (
    SELECT id FROM audit_log WHERE at < $2 ORDER BY at LIMIT $1 FOR UPDATE SKIP LOCKED
)
"""


async def prune(cutoff: datetime, *, batch: int, dry_run: bool = False) -> pruning.Pruned:
    """Delete entries written before `cutoff` (only when AUDIT_RETENTION_DAYS is set)."""
    what = "audit entries"
    if dry_run:
        rows, size = await pruning.estimate(
            "SELECT count(*), sum(pg_column_size(audit_log.*)) FROM audit_log WHERE at < $1",
            cutoff,
        )
        return pruning.Pruned(what, rows, size, cutoff)
    return pruning.Pruned(what, await pruning.in_batches(_PRUNE, cutoff, batch=batch), None, cutoff)


async def oldest() -> datetime | None:
    async with engine.connection() as connection:
        return await connection.fetchval("SELECT min(at) FROM audit_log")
