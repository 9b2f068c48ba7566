"""Runs: one agent working on one issue in one mode, from `queued` to a final state.

    queued → dispatched → running → succeeded | failed | cancelled | timed_out | blocked
    queued → refused (a spawn gate said no)

A unique index keeps one active run per issue across any number of replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg

from app.db import engine
from app.modes import Mode


class RunState(StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    BLOCKED = "blocked"
    REFUSED = "refused"

    @property
    def active(self) -> bool:
        return self in ACTIVE

    @property
    def finished(self) -> bool:
        return self not in ACTIVE


ACTIVE = frozenset({RunState.QUEUED, RunState.DISPATCHED, RunState.RUNNING})


@dataclass(frozen=True)
class Run:
    id: int
    installation_id: int
    repository: str
    repository_id: int
    issue_number: int
    mode: Mode
    state: RunState
    agent: str
    requested_by: str | None
    command_id: int | None
    notes: str | None
    plan_id: int | None
    fingerprint: str | None
    retry_of: int | None
    workflow: str | None
    ref: str | None
    workflow_run_id: int | None
    workflow_run_url: str | None
    dispatch_attempts: int
    dispatch_sent_at: datetime | None
    cost_cap_usd: float | None
    cost_usd: float | None
    turns: int | None
    outcome: str | None
    summary: str | None
    pr_number: int | None
    pr_url: str | None
    blocker_reason: str | None
    blocker_category: str | None
    refusal: str | None
    status_comment_id: int | None
    created_at: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    last_seen_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Run:
        data = dict(row)
        data["mode"] = Mode(data["mode"])
        data["state"] = RunState(data["state"])
        return cls(**data)


class ActiveRunExists(Exception):
    def __init__(self, run: Run) -> None:
        super().__init__(f"run #{run.id} is already {run.state.value} on this issue")
        self.run = run


async def create(
    *,
    installation_id: int,
    repository: str,
    repository_id: int,
    issue_number: int,
    mode: Mode,
    requested_by: str | None,
    command_id: int | None = None,
    notes: str | None = None,
    plan_id: int | None = None,
    fingerprint: str | None = None,
    retry_of: int | None = None,
) -> Run:
    """A queued run. Raises ActiveRunExists if the issue already has one."""
    async with engine.connection() as connection:
        try:
            async with connection.transaction():
                row = await connection.fetchrow(
                    """
                    INSERT INTO run (installation_id, repository, repository_id, issue_number,
                        mode, requested_by, command_id, notes, plan_id, fingerprint, retry_of)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                    RETURNING *
                    """,
                    installation_id,
                    repository,
                    repository_id,
                    issue_number,
                    mode.value,
                    requested_by,
                    command_id,
                    notes,
                    plan_id,
                    fingerprint,
                    retry_of,
                )
        except asyncpg.UniqueViolationError:
            active = await active_for_issue(repository_id, issue_number)
            if active is None:
                raise
            raise ActiveRunExists(active) from None
    return Run.from_row(row)


async def get(run_id: int, *, lock: bool = False) -> Run | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM run WHERE id = $1" + (" FOR UPDATE" if lock else ""), run_id
        )
    return Run.from_row(row) if row else None


async def active_for_issue(repository_id: int, issue_number: int) -> Run | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM run WHERE repository_id = $1 AND issue_number = $2 "
            "AND state IN ('queued', 'dispatched', 'running')",
            repository_id,
            issue_number,
        )
    return Run.from_row(row) if row else None


async def for_issue(repository: str, issue_number: int, limit: int = 10) -> list[Run]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM run WHERE lower(repository) = lower($1) AND issue_number = $2 "
            "ORDER BY id DESC LIMIT $3",
            repository,
            issue_number,
            limit,
        )
    return [Run.from_row(row) for row in rows]


async def by_workflow_run(workflow_run_id: int) -> Run | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM run WHERE workflow_run_id = $1", workflow_run_id
        )
    return Run.from_row(row) if row else None


async def update(run_id: int, **fields: Any) -> Run:
    """Set columns of one run; returns it as stored."""
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    values = [f.value if isinstance(f, StrEnum) else f for f in fields.values()]
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"UPDATE run SET {assignments} WHERE id = $1 RETURNING *", run_id, *values
        )
    if row is None:
        raise LookupError(f"no run {run_id}")
    return Run.from_row(row)


async def record_event(run_id: int, kind: str, body: dict[str, Any]) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO run_event (run_id, type, body) VALUES ($1, $2, $3)", run_id, kind, body
        )


async def silent_since(cutoff: datetime) -> list[Run]:
    """Active runs dispatched to GitHub that nobody has heard from since `cutoff`."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM run WHERE state IN ('dispatched', 'running') "
            "AND coalesce(last_seen_at, dispatch_sent_at, dispatched_at, created_at) < $1",
            cutoff,
        )
    return [Run.from_row(row) for row in rows]
