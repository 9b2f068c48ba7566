"""Runs: one agent working on one issue in one mode, from `queued` to a final state.

    queued → dispatched → running → succeeded | failed | cancelled | timed_out | blocked
    queued → refused (a spawn gate said no)

A unique index keeps one active run per issue across any number of replicas. This module holds
the run record (its states, triggers and fields) and its reads and writes one run at a time;
`run_events` holds what an agent reported, `run_search` the listings, `run_counts` what the
spawn gates count, `run_liveness` the heartbeat and the watchdog's query, and `run_log_expiry`
when logs expire.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg

from app.db import engine
from app.github.rest import ReactionTarget
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
ACTIVE_SQL = "('queued', 'dispatched', 'running')"


class Trigger(StrEnum):
    """What asked for the run."""

    COMMAND = "command"
    AUTO_RULE = "auto_rule"
    ALERT = "alert"
    RETRY = "retry"
    HARNESS = "harness"
    MISSION = "mission"
    MCP = "mcp"
    # A review that requested changes on a pull request (`follow_ups.on_changes_requested`).
    REVIEW = "review"

    @property
    def through_api(self) -> bool:
        """Asked for with an API token (a harness, an MCP client): the caller hears the spawn
        gates' answer directly, and the requester is a token, not a GitHub login."""
        return self in (Trigger.HARNESS, Trigger.MCP)


@dataclass(frozen=True)
class Run:
    id: int
    installation_id: int
    repository: str
    repository_id: int
    issue_number: int
    mode: Mode
    state: RunState
    trigger: Trigger
    agent: str
    requested_by: str | None
    command_id: int | None
    command_line: str | None
    reaction_target: ReactionTarget | None
    notes: str | None
    plan_id: int | None
    fingerprint: str | None
    error_context: dict[str, Any] | None
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
    # The issue as the agent was briefed (the first brief), so a plan binds what it was made from.
    issue_title: str | None
    issue_body: str | None
    # The issue was edited after its plan was approved; the agent works from the approved text.
    issue_edited: bool
    # Signs this run's viewer links; cleared when the run ends for public repositories.
    viewer_key: str | None
    # The latest attempt of its workflow run (GitHub's "Re-run jobs" makes a new one, with
    # `run_attempt` + 1 in its OIDC tokens); only that attempt may report.
    attempt: int
    # Set when the log chunks were dropped (RUN_LOG_RETENTION_DAYS after the run ended).
    log_expired_at: datetime | None = None
    # The pull request a QA run checks, as it was when the run was asked for: number, head ref
    # and sha, base ref, head repository, URL (`app/agents/qa.py`).
    target_pull: dict[str, Any] | None = None
    # The agent's whole report (qa, research), posted as the run's report comment.
    report: str | None = None
    report_comment_id: int | None = None
    # The `dispatch/qa` check run on the pull request's head (QA runs).
    check_run_id: int | None = None
    # Revise runs: the issue the pull request fixes (its status comment is linked from there),
    # the review feedback and diff summary the run was asked with (`app/agents/review_feedback.py`),
    # and the commit the workflow pushed to the pull request's branch.
    origin_issue: int | None = None
    follow_up: dict[str, Any] | None = None
    pushed_sha: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Run:
        data = dict(row)
        data["mode"] = Mode(data["mode"])
        data["state"] = RunState(data["state"])
        data["trigger"] = Trigger(data["trigger"])
        target = data["reaction_target"]
        data["reaction_target"] = ReactionTarget(**target) if target else None
        return cls(**data)


class ActiveRunExists(Exception):
    def __init__(self, run: Run) -> None:
        super().__init__(f"run #{run.id} is already {run.state.value} on this issue")
        self.run = run


@dataclass(frozen=True)
class NewRun:
    """Everything a run starts with: where, what, who and why."""

    installation_id: int
    repository: str
    repository_id: int
    issue_number: int
    mode: Mode
    trigger: Trigger
    requested_by: str | None = None
    command_id: int | None = None
    command_line: str | None = None
    reaction_target: ReactionTarget | None = None
    notes: str | None = None
    plan_id: int | None = None
    fingerprint: str | None = None
    error_context: dict[str, Any] | None = None
    retry_of: int | None = None
    target_pull: dict[str, Any] | None = None
    origin_issue: int | None = None
    follow_up: dict[str, Any] | None = None
    # The agent that works the run: its label is `agent/<agent>` while it runs.
    agent: str = "claude"


def new_viewer_key() -> str:
    return secrets.token_urlsafe(24)


async def create(new: NewRun) -> Run:
    """A queued run. Raises ActiveRunExists if the issue already has one."""
    target = None
    if new.reaction_target is not None:
        target = {
            "kind": new.reaction_target.kind,
            "number": new.reaction_target.number,
            "comment_id": new.reaction_target.comment_id,
        }
    async with engine.connection() as connection:
        try:
            async with connection.transaction():
                row = await connection.fetchrow(
                    """
                    INSERT INTO run (installation_id, repository, repository_id, issue_number,
                        mode, trigger, requested_by, command_id, command_line, reaction_target,
                        notes, plan_id, fingerprint, error_context, retry_of, viewer_key,
                        target_pull, origin_issue, follow_up, agent)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16, $17, $18, $19, $20)
                    RETURNING *
                    """,
                    new.installation_id,
                    new.repository,
                    new.repository_id,
                    new.issue_number,
                    new.mode.value,
                    new.trigger.value,
                    new.requested_by,
                    new.command_id,
                    new.command_line,
                    target,
                    new.notes,
                    new.plan_id,
                    new.fingerprint,
                    new.error_context,
                    new.retry_of,
                    new_viewer_key(),
                    new.target_pull,
                    new.origin_issue,
                    new.follow_up,
                    new.agent,
                )
        except asyncpg.UniqueViolationError:
            active = await active_for_issue(new.repository_id, new.issue_number)
            if active is None:
                raise
            raise ActiveRunExists(active) from None
    return Run.from_row(row)


# Run ids are bigint: a larger one (from a URL) names no run.
MAX_RUN_ID = 2**63 - 1


async def get(run_id: int, *, lock: bool = False) -> Run | None:
    if not 0 < run_id <= MAX_RUN_ID:
        return None
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM run WHERE id = $1" + (" FOR UPDATE" if lock else ""), run_id
        )
    return Run.from_row(row) if row else None


async def active_for_issue(
    repository_id: int, issue_number: int, *, other_than: int | None = None
) -> Run | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT * FROM run WHERE repository_id = $1 AND issue_number = $2 "
            f"AND state IN {ACTIVE_SQL} AND ($3::bigint IS NULL OR id <> $3)",
            repository_id,
            issue_number,
            other_than,
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
