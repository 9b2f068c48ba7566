"""Fix verification: when a pull request that fixes an alert issue merges, a fix attempt starts
and the issue moves to `status/verifying`. The window (FIX_VERIFICATION_HOURS, 48 by default)
starts at the first successful deployment whose commit contains the merge commit (GitHub's
compare API decides), or at the merge if no deployment is reported. A recurrence inside the window
fails the fix: the issue reopens one priority step higher with `dispatch/fix-failed` and the new
events (in a job of its own, which decides the new priority once, so a retry after a lost answer
neither raises it twice nor posts twice), and the spawn gates may dispatch again. At the deadline
a scheduled job verifies the fix and closes the issue. Time comes from the runtime's clock, so
tests can move it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from app import jobs, queue
from app.agents import runs
from app.audit import log as audit
from app.clock import parse_timestamp
from app.db import engine
from app.events import Event
from app.github import markdown, rest
from app.issues import state
from app.issues.labels import Priority, Signal, Status, priority_of
from app.runtime import Runtime

log = logging.getLogger(__name__)


class FixState(StrEnum):
    MONITORING = "monitoring"
    VERIFIED = "verified"
    FAILED = "failed"


@dataclass(frozen=True)
class FixAttempt:
    id: int
    fingerprint: str
    installation_id: int
    repository: str
    issue_number: int
    pr_number: int
    merge_commit_sha: str | None
    merged_at: datetime
    deployed_at: datetime | None
    window_start: datetime
    deadline: datetime
    state: FixState
    recurrences: int

    @classmethod
    def from_row(cls, row: Any) -> FixAttempt:
        data = dict(row)
        data["state"] = FixState(data["state"])
        return cls(**data)


_COLUMNS = (
    "id, fingerprint, installation_id, repository, issue_number, pr_number, merge_commit_sha, "
    "merged_at, deployed_at, window_start, deadline, state, recurrences"
)
_FIELDS = frozenset(_COLUMNS.split(", "))


async def start_if_alert_issue(rt: Runtime, event: Event, number: int) -> bool:
    """On a merged PR that fixes issue `number`: if it is an alert issue, start watching the
    fix (`status/verifying`) and return True; otherwise False (the issue simply is done)."""
    repository = event.payload["repository"]
    async with engine.connection() as connection:
        fingerprint = await connection.fetchval(
            "SELECT fingerprint FROM alert_error WHERE repository_id = $1 AND issue_number = $2",
            repository["id"],
            number,
        )
    if fingerprint is None:
        return False
    pull_request = event.payload["pull_request"]
    now = rt.clock.now()
    merged_at = parse_timestamp(pull_request.get("merged_at")) or now
    hours = timedelta(hours=rt.settings.fix_verification_hours)
    async with engine.connection() as connection:
        # A newer fix for the same error replaces the one being watched.
        await connection.execute(
            "UPDATE fix_attempt SET state = 'failed', decided_at = $2 "
            "WHERE fingerprint = $1 AND state = 'monitoring'",
            fingerprint,
            now,
        )
        await connection.execute(
            f"""
            INSERT INTO fix_attempt (fingerprint, installation_id, repository, issue_number,
                pr_number, merge_commit_sha, merged_at, window_start, deadline)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
            RETURNING {_COLUMNS}
            """,
            fingerprint,
            event.installation_id,
            repository["full_name"],
            number,
            pull_request["number"],
            pull_request.get("merge_commit_sha"),
            merged_at,
            merged_at + hours,
        )
    client = rt.github.installation(event.installation_id or 0)
    await state.move_to(
        client,
        rt,
        repository["full_name"],
        number,
        Status.VERIFYING,
        actor=await rt.github.bot_login(),
        reason=f"fix #{pull_request['number']} merged; watching for a recurrence",
        delivery=event.delivery,
        installation_id=event.installation_id,
    )
    await rest.remove_label(client, repository["full_name"], number, Signal.FIX_FAILED)
    await rest.upsert_marked_comment(
        client,
        repository["full_name"],
        number,
        f"fix:{pull_request['number']}",
        f"🔍 The fix in #{pull_request['number']} is merged. Dispatch watches for this error for "
        f"{rt.settings.fix_verification_hours:g} hours from its deployment (or from the merge if "
        "no deployment is reported); a recurrence reopens this issue.",
        bot_login=await rt.github.bot_login(),
    )
    return True


async def watching(repository_id: int, number: int) -> bool:
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM fix_attempt f JOIN alert_error e USING (fingerprint) "
                "WHERE e.repository_id = $1 AND e.issue_number = $2 AND f.state = 'monitoring'",
                repository_id,
                number,
            )
        )


async def on_deployment(rt: Runtime, event: Event) -> int:
    """A successful deployment: attempts whose merge commit it contains start their window now."""
    status = event.payload.get("deployment_status") or {}
    if status.get("state") != "success" or event.installation_id is None:
        return 0
    deployment = event.payload.get("deployment") or {}
    sha = deployment.get("sha")
    repository = event.repository or ""
    deployed_at = parse_timestamp(status.get("created_at")) or rt.clock.now()
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM fix_attempt WHERE lower(repository) = lower($1) "
            "AND state = 'monitoring' AND deployed_at IS NULL",
            repository,
        )
    client = rt.github.installation(event.installation_id)
    started = 0
    for attempt in (FixAttempt.from_row(row) for row in rows):
        if not sha or not attempt.merge_commit_sha:
            continue
        if not await contains(client, repository, attempt.merge_commit_sha, sha):
            continue
        deadline = deployed_at + timedelta(hours=rt.settings.fix_verification_hours)
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE fix_attempt SET deployed_at = $2, deployment_sha = $3, window_start = $2, "
                "deadline = $4 WHERE id = $1",
                attempt.id,
                deployed_at,
                sha,
                deadline,
            )
        started += 1
    return started


async def contains(client: Any, repository: str, base: str, head: str) -> bool | None:
    """Does `head` contain commit `base`? None when GitHub does not know one of them."""
    status = await rest.compare_commits(client, repository, base, head)
    return None if status is None else status in ("ahead", "identical")


async def monitoring(fingerprint: str) -> FixAttempt | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM fix_attempt WHERE fingerprint = $1 AND state = 'monitoring'",
            fingerprint,
        )
    return FixAttempt.from_row(row) if row else None


async def recurrence(
    rt: Runtime, fingerprint: str, at: datetime, release: str | None, events: list[dict[str, Any]]
) -> bool:
    """The error fired again. True if that failed the fix being watched."""
    attempt = await monitoring(fingerprint)
    if attempt is None or not (attempt.window_start <= at <= attempt.deadline):
        return False
    client = rt.github.installation(attempt.installation_id)
    # Errors from a build older than the fix say nothing about the fix.
    if (
        release
        and attempt.merge_commit_sha
        and await contains(client, attempt.repository, attempt.merge_commit_sha, release) is False
    ):
        log.info("recurrence from an older release ignored", extra={"release": release})
        return False
    async with engine.connection() as connection:
        failed = await connection.fetchval(
            "UPDATE fix_attempt SET state = 'failed', decided_at = $2, "
            "recurrences = recurrences + 1 WHERE id = $1 AND state = 'monitoring' RETURNING id",
            attempt.id,
            rt.clock.now(),
        )
        if failed is None:
            return False
        await queue.enqueue(
            jobs.REOPEN_FAILED_FIX,
            {"attempt": attempt.id, "events": events},
            dedupe_key=f"fix-failed:{attempt.id}",
            connection=connection,
        )
    return True


async def reopen_failed(rt: Runtime, attempt_id: int, events: list[dict[str, Any]]) -> None:
    """The GitHub side of a failed fix (a job): reopen the issue one priority step higher, with
    `dispatch/fix-failed`, `status/ready` and a comment listing the new events, then let the
    gates consider a new run (DESIGN: "the gates may dispatch again"). The new priority
    is decided once and stored, so a retry finishes the same escalation instead of raising the
    priority again from labels an earlier attempt already changed."""
    select = f"SELECT {_COLUMNS}, escalated_to FROM fix_attempt WHERE id = $1"
    async with engine.connection() as connection:
        row = await connection.fetchrow(select, attempt_id)
    if row is None:
        return
    attempt = FixAttempt.from_row({k: v for k, v in row.items() if k in _FIELDS})
    client = rt.github.installation(attempt.installation_id)
    if row["escalated_to"] is None:
        labels = await rest.issue_labels(client, attempt.repository, attempt.issue_number)
        before = priority_of(labels) or Priority.P3
        async with engine.transaction(), engine.connection() as connection:
            decided = await connection.fetchval(
                "UPDATE fix_attempt SET escalated_from = $2, escalated_to = $3 "
                "WHERE id = $1 AND escalated_to IS NULL RETURNING id",
                attempt_id,
                before.value,
                before.raised().value,
            )
            if decided is not None:
                await audit.record(
                    actor=await rt.github.bot_login(),
                    action="fix.failed",
                    repository=attempt.repository,
                    issue_number=attempt.issue_number,
                    installation_id=attempt.installation_id,
                    before={"priority": before.value},
                    after={"priority": before.raised().value, "pr": attempt.pr_number},
                )
        async with engine.connection() as connection:
            row = await connection.fetchrow(select, attempt_id)
    raised = row["escalated_to"]
    await _reopen_escalated(rt, client, attempt, Priority(raised), events)
    # Only now may the gates dispatch again: a run started earlier would race the reopening.
    await queue.enqueue(
        jobs.CONSIDER_SPAWN,
        {"fingerprint": attempt.fingerprint},
        dedupe_key=f"spawn:{attempt.fingerprint}",
    )


async def _reopen_escalated(
    rt: Runtime,
    client: Any,
    attempt: FixAttempt,
    raised: Priority,
    events: list[dict[str, Any]],
) -> None:
    repository, number = attempt.repository, attempt.issue_number
    actor = await rt.github.bot_login()
    labels = await rest.issue_labels(client, repository, number)
    await rest.update_issue(client, repository, number, state="open")
    if raised.value not in labels:
        await rest.add_label(client, repository, number, raised.value)
    for label in labels:
        if label.startswith("priority/") and label != raised.value:
            await rest.remove_label(client, repository, number, label)
    await rest.add_label(client, repository, number, Signal.FIX_FAILED)
    # A run already working on it (started by a later alert while this job retried) keeps it
    # in progress.
    if not any(run.state.active for run in await runs.for_issue(repository, number)):
        await state.move_to(
            client,
            rt,
            repository,
            number,
            Status.READY,
            actor=actor,
            reason="the error came back after the fix",
            installation_id=attempt.installation_id,
        )
    lines = "\n".join(
        f"- {e.get('at')}: {markdown.code_span((e.get('message') or 'event')[:200])} "
        f"(x{e.get('count', 1)})"
        + (f", release {markdown.code_span(e['release'])}" if e.get("release") else "")
        for e in events[:10]
    )
    # Marked, so a retry after a lost answer edits it instead of posting it twice.
    await rest.upsert_marked_comment(
        client,
        repository,
        number,
        f"fix-failed:{attempt.id}",
        f"❌ **The fix in #{attempt.pr_number} did not hold**: the error came back inside the "
        f"verification window. Priority raised to `{raised.value}`.\n\n{lines}",
        bot_login=actor,
    )


async def verify_due(rt: Runtime) -> int:
    """Close the issues whose fix held until the deadline, one locked attempt at a time, so a
    GitHub failure leaves that attempt for the next pass."""
    verified = 0
    while True:
        async with engine.transaction(), engine.connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {_COLUMNS} FROM fix_attempt WHERE state = 'monitoring' AND deadline <= $1 "
                "ORDER BY deadline LIMIT 1 FOR UPDATE SKIP LOCKED",
                rt.clock.now(),
            )
            if row is None:
                return verified
            attempt = FixAttempt.from_row(row)
            await _close_verified(rt, attempt)
            await connection.execute(
                "UPDATE fix_attempt SET state = 'verified', decided_at = $2 WHERE id = $1",
                attempt.id,
                rt.clock.now(),
            )
            verified += 1


async def _close_verified(rt: Runtime, attempt: FixAttempt) -> None:
    client = rt.github.installation(attempt.installation_id)
    actor = await rt.github.bot_login()
    hours = (attempt.deadline - attempt.window_start).total_seconds() / 3600
    await rest.upsert_marked_comment(
        client,
        attempt.repository,
        attempt.issue_number,
        f"verified:{attempt.id}",
        f"✅ **Fix verified.** The error did not come back in the {hours:g} hours after "
        f"#{attempt.pr_number} was {'deployed' if attempt.deployed_at else 'merged'}. Closing.",
        bot_login=actor,
    )
    await state.move_to(
        client,
        rt,
        attempt.repository,
        attempt.issue_number,
        Status.DONE,
        actor=actor,
        reason="fix verified",
        installation_id=attempt.installation_id,
    )
    await rest.update_issue(
        client, attempt.repository, attempt.issue_number, state="closed", state_reason="completed"
    )
    await audit.record(
        actor=actor,
        action="fix.verified",
        repository=attempt.repository,
        issue_number=attempt.issue_number,
        installation_id=attempt.installation_id,
        after={"pr": attempt.pr_number},
    )
