"""Runs: one agent working on one issue in one mode, from `queued` to a final state.

    queued → dispatched → running → succeeded | failed | cancelled | timed_out | blocked
    queued → refused (a spawn gate said no)

A unique index keeps one active run per issue across any number of replicas.
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
_ACTIVE_SQL = "('queued', 'dispatched', 'running')"


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
            f"AND state IN {_ACTIVE_SQL} AND ($3::bigint IS NULL OR id <> $3)",
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


async def recent(repository_id: int, limit: int = 10) -> list[Run]:
    """The latest runs of a repository, newest first."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM run WHERE repository_id = $1 ORDER BY id DESC LIMIT $2",
            repository_id,
            limit,
        )
    return [Run.from_row(row) for row in rows]


@dataclass(frozen=True)
class RunFilter:
    repositories: list[str] | None = None  # None: every repository
    issue_number: int | None = None
    states: list[RunState] | None = None
    mode: Mode | None = None


async def search(flt: RunFilter, *, limit: int = 50, offset: int = 0) -> tuple[int, list[Run]]:
    """(total matching, one page), newest first."""
    where = ["true"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if flt.repositories is not None:
        where.append(f"lower(repository) = ANY({arg([r.lower() for r in flt.repositories])})")
    if flt.issue_number is not None:
        where.append(f"issue_number = {arg(flt.issue_number)}")
    if flt.states:
        where.append(f"state = ANY({arg([state.value for state in flt.states])})")
    if flt.mode is not None:
        where.append(f"mode = {arg(flt.mode.value)}")
    clause = " AND ".join(where)
    async with engine.connection() as connection:
        total = await connection.fetchval(f"SELECT count(*) FROM run WHERE {clause}", *args)
        rows = await connection.fetch(
            f"SELECT * FROM run WHERE {clause} ORDER BY id DESC "
            f"LIMIT {arg(limit)} OFFSET {arg(offset)}",
            *args,
        )
    return int(total), [Run.from_row(row) for row in rows]


@dataclass(frozen=True)
class RunEvent:
    id: int
    type: str
    body: dict[str, Any]
    at: datetime


async def events(run_id: int) -> list[RunEvent]:
    """What the agent reported, oldest first."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT id, type, body, at FROM run_event WHERE run_id = $1 ORDER BY id", run_id
        )
    return [RunEvent(**dict(row)) for row in rows]


async def started_by(repository_id: int, issue_number: int, mode: Mode, trigger: Trigger) -> bool:
    """Whether any run of `mode` was ever started on the issue by `trigger`."""
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM run WHERE repository_id = $1 AND issue_number = $2 "
                "AND mode = $3 AND trigger = $4 LIMIT 1",
                repository_id,
                issue_number,
                mode.value,
                trigger.value,
            )
        )


async def working_count(installation_id: int, mode: Mode, *, other_than: int | None = None) -> int:
    """Runs of `mode` dispatched to GitHub and not finished, in one installation."""
    async with engine.connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM run WHERE installation_id = $1 AND mode = $2 "
                "AND state IN ('dispatched', 'running') AND ($3::bigint IS NULL OR id <> $3)",
                installation_id,
                mode.value,
                other_than,
            )
        )


async def working_by_mode(installation_id: int) -> dict[str, int]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT mode, count(*) FROM run WHERE installation_id = $1 "
            "AND state IN ('dispatched', 'running') GROUP BY mode",
            installation_id,
        )
    return {row["mode"]: int(row["count"]) for row in rows}


async def spent_since(installation_id: int, since: datetime) -> float:
    """Agent spend reported by runs of an installation that finished since `since`."""
    async with engine.connection() as connection:
        return float(
            await connection.fetchval(
                "SELECT coalesce(sum(cost_usd), 0) FROM run WHERE installation_id = $1 "
                "AND finished_at >= $2",
                installation_id,
                since,
            )
        )


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


async def mark_seen(run_id: int, now: datetime) -> None:
    """The agent is alive (it just sent output): a dispatched run is now running."""
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE run SET last_seen_at = $2, state = CASE WHEN state = 'dispatched' "
            "THEN 'running' ELSE state END, started_at = coalesce(started_at, $2) "
            "WHERE id = $1 AND (state = 'dispatched' OR (state = 'running' AND "
            # Log chunks arrive every few seconds; the watchdog needs minutes, not every one.
            "(last_seen_at IS NULL OR last_seen_at < $2::timestamptz - interval '15 seconds')))",
            run_id,
            now,
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


async def logs_due(ended_before: datetime, limit: int | None = None) -> list[int]:
    """Finished runs that ended before `ended_before` and still have their log, oldest first
    (all of them when `limit` is None). Active runs never appear, however old: their log is
    still being written."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT id FROM run WHERE log_expired_at IS NULL AND finished_at IS NOT NULL "
            f"AND finished_at < $1 AND state NOT IN {_ACTIVE_SQL} ORDER BY finished_at LIMIT $2",
            ended_before,
            limit,
        )
    return [row["id"] for row in rows]


async def mark_log_expired(run_ids: list[int], at: datetime) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE run SET log_expired_at = $2 WHERE id = ANY($1) AND log_expired_at IS NULL",
            run_ids,
            at,
        )


async def oldest_kept_log_end() -> datetime | None:
    """When the run whose log has been kept longest ended."""
    async with engine.connection() as connection:
        return await connection.fetchval(
            "SELECT min(finished_at) FROM run WHERE log_expired_at IS NULL "
            "AND finished_at IS NOT NULL"
        )
