"""The claim record: its states and outcomes, what a claim answers (`Claimed`), and the one-claim
reads and writes other rooms use (the claim on an issue now, the run its holder registered, how
many claims an installation holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.claims.follow_ups import ISSUE, PR_FOLLOW_UP, PullFollowUp
from app.db import engine
from app.issues.cache import CachedIssue
from app.issues.labels import agent_label


class ClaimState(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"  # by its holder, with an outcome
    EXPIRED = "expired"  # its lease ran out (outcome `abandoned`)
    REVOKED = "revoked"  # a person removed the agent's label


class Outcome(StrEnum):
    DONE = "done"
    BLOCKED = "blocked"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Claim:
    id: int
    installation_id: int
    repository_id: int
    repository: str
    issue_number: int
    agent: str
    token_id: int | None
    token_name: str
    state: ClaimState
    outcome: Outcome | None
    reason: str | None
    pr_url: str | None
    run_id: int | None
    claimed_at: datetime
    heartbeat_at: datetime
    lease_expires_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    kind: str = ISSUE
    head_sha: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Claim:
        data = dict(row)
        data["state"] = ClaimState(data["state"])
        data["outcome"] = Outcome(data["outcome"]) if data["outcome"] else None
        return cls(**data)

    @property
    def label(self) -> str:
        return agent_label(self.agent)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "agent": self.agent,
            "repository": self.repository,
            "issue": self.issue_number,
            "state": self.state.value,
            "outcome": self.outcome.value if self.outcome else None,
            "reason": self.reason,
            "pr_url": self.pr_url,
            "run": self.run_id,
            "token": self.token_name,
            "claimed_at": self.claimed_at.isoformat(),
            "heartbeat_at": self.heartbeat_at.isoformat(),
            "lease_expires_at": self.lease_expires_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by,
            **({"head_sha": self.head_sha} if self.kind == PR_FOLLOW_UP else {}),
        }


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    issue: CachedIssue | None
    url: str | None
    # A `pr_follow_up` claim: the pull request and its review feedback.
    follow_up: PullFollowUp | None = None
    feedback: dict[str, Any] | None = None


# --- reading


# Claim ids are bigint: a larger one (from a URL) names no claim.
MAX_CLAIM_ID = 2**63 - 1


async def get(claim_id: int, *, lock: bool = False) -> Claim | None:
    if not 0 < claim_id <= MAX_CLAIM_ID:
        return None
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM claim WHERE id = $1" + (" FOR UPDATE" if lock else ""), claim_id
        )
    return Claim.from_row(row) if row else None


async def active_on(repository_id: int, issue_number: int) -> Claim | None:
    """The claim holding an issue now, if any."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM claim WHERE repository_id = $1 AND issue_number = $2 "
            "AND state = 'active'",
            repository_id,
            issue_number,
        )
    return Claim.from_row(row) if row else None


async def attach_run(claim_id: int, run_id: int) -> None:
    """Remember the run a claim's holder registered for its issue (the newest one)."""
    async with engine.connection() as connection:
        await connection.execute("UPDATE claim SET run_id = $2 WHERE id = $1", claim_id, run_id)


async def active_count(installation_id: int) -> int:
    async with engine.connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM claim WHERE installation_id = $1 AND state = 'active'",
                installation_id,
            )
        )
