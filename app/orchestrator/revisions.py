"""The tables of what missions proposed and what approving a proposal did: one row per revision
Claude proposed (its items, the hash of the issue text it was planned from, who approved or
rejected it and when), and one row per item of an approved revision (its issue, the run
requested for it, or why it waits or was refused)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.db import engine
from app.orchestrator.missions import Mission


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class ItemOutcome(StrEnum):
    PENDING = "pending"
    NO_RUN = "no_run"  # mode none: the issue is created and waits for people
    WAITING = "waiting"  # for the issues it depends on to close
    REQUESTED = "requested"
    DISPATCHED = "dispatched"
    REFUSED = "refused"


@dataclass(frozen=True)
class Proposal:
    id: int
    mission_id: int
    generation: int
    revision: str
    proposal: dict[str, Any]
    issue_hash: str
    state: ProposalState
    comment_id: int | None
    decided_by: str | None
    decided_at: datetime | None
    feedback: str | None
    executed_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Proposal:
        data = dict(row)
        data["state"] = ProposalState(data["state"])
        return cls(**data)


@dataclass(frozen=True)
class Item:
    proposal_id: int
    position: int
    issue_number: int | None
    creating_since: datetime | None
    depends_on: list[int]
    run_id: int | None
    outcome: ItemOutcome
    detail: str | None

    @classmethod
    def from_row(cls, row: Any) -> Item:
        data = dict(row)
        data["outcome"] = ItemOutcome(data["outcome"])
        data["depends_on"] = list(data["depends_on"] or [])
        return cls(**data)


# --- proposals


async def add_proposal(
    mission: Mission, revision: str, proposal: dict[str, Any], issue_hash: str
) -> Proposal | None:
    """Record the proposal of the mission's current planning and mark the mission proposed;
    None when a newer planning started meanwhile (the proposal answers an old question)."""
    async with engine.transaction(), engine.connection() as connection:
        moved = await connection.fetchval(
            "UPDATE mission SET state = 'proposed', updated_at = now() WHERE id = $1 "
            "AND generation = $2 AND state IN ('planning', 'waiting') RETURNING id",
            mission.id,
            mission.generation,
        )
        if moved is None:
            return None
        await connection.execute(
            "UPDATE mission_proposal SET state = 'superseded' WHERE mission_id = $1 "
            "AND state = 'proposed'",
            mission.id,
        )
        row = await connection.fetchrow(
            """
            INSERT INTO mission_proposal (mission_id, generation, revision, proposal, issue_hash)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (mission_id, revision) DO UPDATE SET state = 'proposed',
                generation = EXCLUDED.generation, created_at = now(), decided_by = NULL,
                decided_at = NULL, feedback = NULL
            RETURNING *
            """,
            mission.id,
            mission.generation,
            revision,
            proposal,
            issue_hash,
        )
    return Proposal.from_row(row)


async def proposal(proposal_id: int) -> Proposal | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM mission_proposal WHERE id = $1", proposal_id)
    return Proposal.from_row(row) if row else None


async def latest_proposal(mission_id: int) -> Proposal | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM mission_proposal WHERE mission_id = $1 ORDER BY created_at DESC, "
            "id DESC LIMIT 1",
            mission_id,
        )
    return Proposal.from_row(row) if row else None


async def proposal_by_revision(mission_id: int, revision: str) -> Proposal | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM mission_proposal WHERE mission_id = $1 AND revision = $2",
            mission_id,
            revision,
        )
    return Proposal.from_row(row) if row else None


async def set_proposal_comment(proposal_id: int, comment_id: int) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE mission_proposal SET comment_id = $2 WHERE id = $1", proposal_id, comment_id
        )


async def decide(
    proposal_id: int, state: ProposalState, *, by: str, feedback: str | None = None
) -> Proposal | None:
    """Approve or reject a proposal still awaiting review; None if it no longer is."""
    async with engine.transaction(), engine.connection() as connection:
        row = await connection.fetchrow(
            "UPDATE mission_proposal SET state = $2, decided_by = $3, decided_at = now(), "
            "feedback = $4 WHERE id = $1 AND state = 'proposed' RETURNING *",
            proposal_id,
            state.value,
            by,
            feedback,
        )
        if row is not None and state is ProposalState.APPROVED:
            await connection.execute(
                "UPDATE mission SET state = 'executing', updated_at = now() WHERE id = $1",
                row["mission_id"],
            )
    return Proposal.from_row(row) if row else None


async def supersede(proposal_id: int) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE mission_proposal SET state = 'superseded' WHERE id = $1 AND state = 'proposed'",
            proposal_id,
        )


async def mark_executed(proposal_id: int, mission_id: int) -> bool:
    """Note the revision carried out; True for the call that did (a rerun finds it noted)."""
    async with engine.transaction(), engine.connection() as connection:
        marked = await connection.fetchval(
            "UPDATE mission_proposal SET executed_at = now() "
            "WHERE id = $1 AND executed_at IS NULL RETURNING true",
            proposal_id,
        )
        await connection.execute(
            "UPDATE mission SET state = 'executed', updated_at = now() WHERE id = $1 "
            "AND state = 'executing'",
            mission_id,
        )
    return bool(marked)


# --- items


async def items(proposal_id: int) -> list[Item]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM mission_item WHERE proposal_id = $1 ORDER BY position", proposal_id
        )
    return [Item.from_row(row) for row in rows]


async def claim_item(proposal_id: int, position: int, now: datetime) -> tuple[Item, bool]:
    """The item's row (made if missing), claimed for creating its issue: True when this call
    claimed it, False when an earlier attempt had (and may have created the issue)."""
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO mission_item (proposal_id, position) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            proposal_id,
            position,
        )
        row = await connection.fetchrow(
            "UPDATE mission_item SET creating_since = $3 WHERE proposal_id = $1 "
            "AND position = $2 AND creating_since IS NULL RETURNING *",
            proposal_id,
            position,
            now,
        )
        if row is not None:
            return Item.from_row(row), True
        row = await connection.fetchrow(
            "SELECT * FROM mission_item WHERE proposal_id = $1 AND position = $2",
            proposal_id,
            position,
        )
    return Item.from_row(row), False


async def update_item(proposal_id: int, position: int, **fields: Any) -> Item:
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(names))
    values = [f.value if isinstance(f, StrEnum) else f for f in fields.values()]
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"UPDATE mission_item SET {assignments} WHERE proposal_id = $1 AND position = $2 "
            "RETURNING *",
            proposal_id,
            position,
            *values,
        )
    if row is None:
        raise LookupError(f"no item {position} of proposal {proposal_id}")
    return Item.from_row(row)


@dataclass(frozen=True)
class WaitingItem:
    mission_id: int
    proposal_id: int
    position: int


async def waiting_on(repository_id: int, issue_number: int) -> list[WaitingItem]:
    """Items of executed proposals in a repository that wait for `issue_number` to close."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            """
            SELECT p.mission_id, i.proposal_id, i.position
            FROM mission_item i
            JOIN mission_proposal p ON p.id = i.proposal_id
            JOIN mission m ON m.id = p.mission_id
            WHERE i.outcome = 'waiting' AND m.repository_id = $1 AND $2 = ANY(i.depends_on)
            ORDER BY p.mission_id, i.position
            """,
            repository_id,
            issue_number,
        )
    return [WaitingItem(**dict(row)) for row in rows]
