"""Plans and their review. A `plan` event posts the plan as a comment, adds `plan/proposed`
and records a revision (a hash of the text). `/dispatch approve` approves exactly that revision;
a newer plan supersedes it and needs its own approval. `/dispatch reject <reason>` keeps the
reason for the next investigation's brief."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.agents.runs import Run
from app.db import engine
from app.github import addresses, markdown, rest
from app.issues.labels import Plan as PlanLabel
from app.runtime import Runtime


class PlanState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Plan:
    id: int
    repository: str
    issue_number: int
    run_id: int | None
    revision: str
    body: str
    requested_by: str | None
    state: PlanState
    decided_by: str | None
    decided_at: datetime | None
    feedback: str | None
    comment_id: int | None
    # The issue as the investigating agent read it: approving the plan approves this text.
    issue_title: str | None
    issue_body: str | None


_COLUMNS = (
    "id, repository, issue_number, run_id, revision, body, requested_by, state, decided_by, "
    "decided_at, feedback, comment_id, issue_title, issue_body"
)


def revision_of(body: str) -> str:
    return hashlib.sha256(body.strip().encode()).hexdigest()[:12]


# GitHub refuses comment bodies over 65,536 characters; leave room for the frame around the plan.
MAX_PLAN_CHARS = 60_000


def render(plan_body: str, revision: str, run: Run, allowed_hosts: list[str], full_url: str) -> str:
    """The plan as a comment: the agent's Markdown made safe (no mentions, remote images or
    outside links), cut with a link to the whole plan when it is longer than GitHub allows."""
    body = markdown.agent_markdown(plan_body.strip(), allowed_hosts)
    body = markdown.cut(
        body,
        MAX_PLAN_CHARS,
        f"_The plan is longer than GitHub shows; [read all of it]({full_url})._",
    )
    return (
        f"### 📋 Plan from run #{run.id} · revision `{revision}`\n\n{body}\n\n---\n"
        "Review it: `/dispatch approve` approves this revision; "
        "`/dispatch reject <reason>` sends it back with your reason."
    )


async def propose(rt: Runtime, run: Run, body: str) -> Plan:
    """Record and post a plan from `run`; earlier undecided plans on the issue are superseded.
    Credentials are scrubbed first: the plan is kept, served whole and briefed without them."""
    body = markdown.scrub_secrets(body)
    revision = revision_of(body)
    client = rt.github.installation(run.installation_id)
    # Found again by its marker: a retried step edits the comment instead of posting it twice.
    comment_id = await rest.upsert_marked_comment(
        client,
        run.repository,
        run.issue_number,
        f"plan:{run.id}:{revision}",
        render(
            body,
            revision,
            run,
            addresses.github_hosts(rt.settings.github_web_url),
            full_plan_url(rt, run.id, revision),
        ),
        bot_login=await rt.github.bot_login(),
    )
    existing = await by_revision(run.id, revision)
    if existing is not None:
        return existing
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE plan SET state = 'superseded' WHERE repository_id = $1 AND issue_number = $2 "
            "AND state IN ('proposed', 'approved')",
            run.repository_id,
            run.issue_number,
        )
        row = await connection.fetchrow(
            f"""
            INSERT INTO plan (installation_id, repository, repository_id, issue_number, run_id,
                revision, body, requested_by, comment_id, issue_title, issue_body)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            RETURNING {_COLUMNS}
            """,
            run.installation_id,
            run.repository,
            run.repository_id,
            run.issue_number,
            run.id,
            revision,
            body,
            run.requested_by,
            comment_id,
            run.issue_title,
            run.issue_body,
        )
    await rest.remove_label(client, run.repository, run.issue_number, PlanLabel.APPROVED)
    await rest.add_label(client, run.repository, run.issue_number, PlanLabel.PROPOSED)
    return _plan(row)


PLAN_LINK_PURPOSE = "plan"
PLAN_LINK_DAYS = 90


def full_plan_url(rt: Runtime, run_id: int, revision: str) -> str:
    """A signed link to a plan's whole text (comments are cut at GitHub's limit)."""
    token = rt.signer.sign(PLAN_LINK_PURPOSE, f"plan:{run_id}:{revision}", PLAN_LINK_DAYS * 86400)
    return f"{rt.settings.dispatch_url}/runs/{run_id}/plans/{revision}?token={token}"


async def by_revision(run_id: int, revision: str) -> Plan | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM plan WHERE run_id = $1 AND revision = $2", run_id, revision
        )
    return _plan(row) if row else None


async def latest(
    repository_id: int, issue_number: int, *, states: tuple[str, ...] | None = None
) -> Plan | None:
    query = f"SELECT {_COLUMNS} FROM plan WHERE repository_id = $1 AND issue_number = $2"
    args: list[Any] = [repository_id, issue_number]
    if states:
        query += " AND state = ANY($3)"
        args.append(list(states))
    async with engine.connection() as connection:
        row = await connection.fetchrow(query + " ORDER BY id DESC LIMIT 1", *args)
    return _plan(row) if row else None


async def get(plan_id: int) -> Plan | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM plan WHERE id = $1", plan_id)
    return _plan(row) if row else None


async def decide(plan: Plan, *, approved: bool, by: str, feedback: str | None = None) -> Plan:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"UPDATE plan SET state = $2, decided_by = $3, decided_at = now(), feedback = $4 "
            f"WHERE id = $1 AND state = 'proposed' RETURNING {_COLUMNS}",
            plan.id,
            (PlanState.APPROVED if approved else PlanState.REJECTED).value,
            by,
            feedback,
        )
    if row is None:
        raise LookupError("the plan is no longer awaiting review")
    return _plan(row)


class PlanRequired(Exception):
    """An implementation needs an approved plan and there is none; the message says what to do."""


async def for_implementation(
    repository_id: int, issue_number: int, *, require_approval: bool
) -> int | None:
    """The id of the approved plan an implementation follows (None when there is none and the
    repository lets implementations start without one). Raises PlanRequired otherwise: the same
    rule for `/dispatch implement`, the API and MCP clients."""
    plan = await latest(repository_id, issue_number)
    if require_approval and (plan is None or plan.state is not PlanState.APPROVED):
        if plan is not None and plan.state is PlanState.PROPOSED:
            raise PlanRequired(
                f"the plan (revision `{plan.revision}`) is waiting for review: "
                "`/dispatch approve` it first."
            )
        raise PlanRequired(
            "there is no approved plan for this issue: `/dispatch investigate`, then "
            "`/dispatch approve` the plan."
        )
    return plan.id if plan is not None and plan.state is PlanState.APPROVED else None


async def latest_feedback(repository_id: int, issue_number: int) -> str | None:
    """The reason the most recent rejected plan was sent back, if it is the latest decision."""
    plan = await latest(repository_id, issue_number)
    return plan.feedback if plan is not None and plan.state is PlanState.REJECTED else None


def _plan(row: Any) -> Plan:
    data = dict(row)
    data["state"] = PlanState(data["state"])
    return Plan(**data)
