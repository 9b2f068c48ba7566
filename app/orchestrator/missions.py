"""The mission table: one row per mission (one request on one issue), with its state, its
generation (each planning again starts a new one) and its planning as it goes: the conversation
with Claude, the rounds, the attempts and the cost. What a mission proposed and what approving
it did are in `revisions.py`. What happened to a mission is audited against its issue
(`record_audit`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg

from app.audit import log as audit
from app.db import engine


class MissionState(StrEnum):
    PLANNING = "planning"
    WAITING = "waiting"  # for Anthropic to answer again (overloaded, rate limited, down)
    PROPOSED = "proposed"
    EXECUTING = "executing"
    EXECUTED = "executed"
    FAILED = "failed"
    REFUSED = "refused"  # by the daily cost budget
    SUPERSEDED = "superseded"  # a newer mission on the same issue took its place


LIVE = (
    MissionState.PLANNING,
    MissionState.WAITING,
    MissionState.PROPOSED,
    MissionState.EXECUTING,
)


class Source(StrEnum):
    COMMAND = "command"
    LABEL = "label"
    CLI = "cli"
    MCP = "mcp"


@dataclass(frozen=True)
class Mission:
    id: int
    installation_id: int
    repository: str
    repository_id: int
    issue_number: int
    source: Source
    request: str
    requested_by: str | None
    command_id: int | None
    state: MissionState
    generation: int
    nonce: str
    feedback: str | None
    transcript: list[dict[str, Any]]
    rounds: int
    attempts: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    error: str | None
    status_comment_id: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Mission:
        data = dict(row)
        data["state"] = MissionState(data["state"])
        data["source"] = Source(data["source"])
        data["transcript"] = list(data["transcript"] or [])
        return cls(**data)


class LiveMissionExists(Exception):
    def __init__(self, mission: Mission) -> None:
        super().__init__(f"mission #{mission.id} is {mission.state.value} on this issue")
        self.mission = mission


async def create(
    *,
    installation_id: int,
    repository: str,
    repository_id: int,
    issue_number: int,
    source: Source,
    request: str,
    requested_by: str | None,
    command_id: int | None = None,
) -> Mission:
    """A mission in `planning`. Raises LiveMissionExists when the issue has one already (a
    retried command finds its own)."""
    async with engine.connection() as connection:
        try:
            async with connection.transaction():
                row = await connection.fetchrow(
                    """
                    INSERT INTO mission (installation_id, repository, repository_id,
                        issue_number, source, request, requested_by, command_id, nonce)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    RETURNING *
                    """,
                    installation_id,
                    repository,
                    repository_id,
                    issue_number,
                    source.value,
                    request,
                    requested_by,
                    command_id,
                    secrets.token_hex(8),
                )
        except asyncpg.UniqueViolationError:
            existing = await live_for_issue(repository_id, issue_number)
            if existing is None and command_id is not None:
                existing = await by_command(command_id)
            if existing is None:
                raise
            raise LiveMissionExists(existing) from None
    return Mission.from_row(row)


async def get(mission_id: int, *, lock: bool = False) -> Mission | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM mission WHERE id = $1" + (" FOR UPDATE" if lock else ""), mission_id
        )
    return Mission.from_row(row) if row else None


async def record_audit(
    mission: Mission,
    *,
    actor: str,
    action: str,
    after: dict[str, Any],
    outcome: audit.Outcome = audit.Outcome.DONE,
    reason: str | None = None,
) -> None:
    """An audit entry about `mission`, on its issue."""
    await audit.record(
        actor=actor,
        action=action,
        repository=mission.repository,
        issue_number=mission.issue_number,
        installation_id=mission.installation_id,
        after=after,
        outcome=outcome,
        reason=reason,
    )


async def by_command(command_id: int) -> Mission | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM mission WHERE command_id = $1", command_id)
    return Mission.from_row(row) if row else None


async def live_for_issue(repository_id: int, issue_number: int) -> Mission | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM mission WHERE repository_id = $1 AND issue_number = $2 "
            "AND state = ANY($3)",
            repository_id,
            issue_number,
            [state.value for state in LIVE],
        )
    return Mission.from_row(row) if row else None


async def latest_for_issue(repository_id: int, issue_number: int) -> Mission | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM mission WHERE repository_id = $1 AND issue_number = $2 "
            "ORDER BY id DESC LIMIT 1",
            repository_id,
            issue_number,
        )
    return Mission.from_row(row) if row else None


async def update(mission_id: int, **fields: Any) -> Mission:
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    values = [f.value if isinstance(f, StrEnum) else f for f in fields.values()]
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"UPDATE mission SET {assignments}, updated_at = now() WHERE id = $1 RETURNING *",
            mission_id,
            *values,
        )
    if row is None:
        raise LookupError(f"no mission {mission_id}")
    return Mission.from_row(row)


async def update_if(mission_id: int, generation: int, **fields: Any) -> Mission | None:
    """`update`, only while the mission is still in `generation` and planning (or waiting);
    None when a newer planning (or an end) came first."""
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(names))
    values = [f.value if isinstance(f, StrEnum) else f for f in fields.values()]
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"UPDATE mission SET {assignments}, updated_at = now() WHERE id = $1 "
            "AND generation = $2 AND state IN ('planning', 'waiting') RETURNING *",
            mission_id,
            generation,
            *values,
        )
    return Mission.from_row(row) if row else None


async def plan_again(mission_id: int, *, feedback: str | None) -> Mission | None:
    """Start a new planning of a live mission (a new generation, a fresh conversation); older
    undecided proposals are superseded. None if the mission is no longer live."""
    async with engine.transaction(), engine.connection() as connection:
        row = await connection.fetchrow(
            "UPDATE mission SET state = 'planning', generation = generation + 1, "
            "feedback = coalesce($2, feedback), transcript = '[]'::jsonb, rounds = 0, "
            "attempts = 0, error = NULL, updated_at = now() "
            "WHERE id = $1 AND state IN ('planning', 'waiting', 'proposed') RETURNING *",
            mission_id,
            feedback,
        )
        if row is None:
            return None
        await connection.execute(
            "UPDATE mission_proposal SET state = 'superseded' WHERE mission_id = $1 "
            "AND state = 'proposed'",
            mission_id,
        )
    return Mission.from_row(row)
