"""Writing and reading audit entries. Writes join the caller's transaction, so an entry exists
exactly when the change it describes was committed."""

from __future__ import annotations

from typing import Any

from app.db.tables import AuditLog


class Outcome:
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"
    SKIPPED = "skipped"


async def record(
    *,
    actor: str,
    action: str,
    target: str,
    outcome: str = Outcome.DONE,
    installation_id: int | None = None,
    repository: str | None = None,
    issue_number: int | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    delivery: str | None = None,
) -> None:
    await AuditLog.insert(
        AuditLog(
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            installation_id=installation_id,
            repository=repository,
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
        query = query.where(AuditLog.repository.ilike(repository))
    if issue_number is not None:
        query = query.where(AuditLog.issue_number == issue_number)
    return await query.run()
