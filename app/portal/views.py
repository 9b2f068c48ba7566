"""What a customer sees, built from Dispatch's own records only (the issue cache, the audit
trail, runs, and the portal's activity tables): never a GitHub call, never a comment body.

The board: the customer's issues in status columns, most urgent and most recently updated first,
paged. The issue page: title, status, priority, dates, the body only where the repository's
`.github/dispatch.yml` says `portal: {show_body: true}` and never for an issue opened from a
production alert, and a public timeline of status changes, agent runs and pull requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.agents import runs
from app.agents.runs import RunState
from app.db import engine
from app.github import rest
from app.installations import service as installations
from app.issues import boards, cache, repo_config, state
from app.issues.labels import Status
from app.portal import activity
from app.portal.customers import Customer

PER_PAGE = 50
MAX_PER_PAGE = 100
COLUMNS: tuple[tuple[Status, str], ...] = (
    (Status.BACKLOG, "Backlog"),
    (Status.READY, "Ready"),
    (Status.IN_PROGRESS, "In progress"),
    (Status.IN_REVIEW, "In review"),
    (Status.VERIFYING, "Verifying"),
    (Status.DONE, "Done"),
)
STATUS_TITLES = dict(COLUMNS)
RUN_STATES = {
    RunState.QUEUED: "queued",
    RunState.DISPATCHED: "starting",
    RunState.RUNNING: "running",
    RunState.SUCCEEDED: "finished",
    RunState.FAILED: "failed",
    RunState.CANCELLED: "cancelled",
    RunState.TIMED_OUT: "timed out",
    RunState.BLOCKED: "waiting for the team",
}
# Issues opened from a production alert carry this marker in their body (app/remediation):
# their body holds production data and is never shown.
ALERT_MARKER = rest.marker("alert:").removesuffix(" -->")


def column_of(issue_state: str, status: str | None) -> Status:
    if issue_state != "open":
        return Status.DONE
    if status is not None and status in Status._value2member_map_:
        return Status(status)
    return Status.BACKLOG


def priority_name(priority: str | None) -> str | None:
    return priority.removeprefix("priority/") if priority else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def public_customer(customer: Customer) -> dict[str, Any]:
    return {
        "slug": customer.slug,
        "name": customer.name,
        "color": customer.color,
        "logo_url": customer.logo_url,
    }


@dataclass(frozen=True)
class Card:
    repository: str
    number: int
    title: str
    state: str
    column: Status
    priority: str | None
    created_at: datetime | None
    updated_at: datetime | None
    closed_at: datetime | None

    @property
    def path(self) -> str:
        return f"{self.repository}/{self.number}"

    def as_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "number": self.number,
            "title": self.title,
            "state": self.state,
            "status": self.column.value,
            "priority": self.priority,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "closed_at": _iso(self.closed_at),
        }


@dataclass
class Column:
    status: Status
    title: str
    count: int
    cards: list[Card] = field(default_factory=list)


@dataclass(frozen=True)
class Board:
    customer: Customer
    columns: list[Column]
    total: int
    page: int
    pages: int
    per_page: int
    show_closed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "customer": public_customer(self.customer),
            "show_closed": self.show_closed,
            "page": self.page,
            "pages": self.pages,
            "per_page": self.per_page,
            "total": self.total,
            "columns": [
                {
                    "status": column.status.value,
                    "title": column.title,
                    "count": column.count,
                    "issues": [card.as_json() for card in column.cards],
                }
                for column in self.columns
            ],
        }


async def board(
    customer: Customer, *, show_closed: bool, page: int, per_page: int = PER_PAGE
) -> Board:
    async with engine.transaction():  # one connection for every read of the page
        repository_ids = await installations.repository_ids(customer.installation_id)
        total, issues = await boards.labelled(
            customer.installation_id,
            customer.label,
            repository_ids,
            include_closed=show_closed,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        counts = await boards.labelled_by_status(
            customer.installation_id, customer.label, repository_ids, include_closed=show_closed
        )
        seen = await activity.for_issues([(i.repository_id, i.number) for i in issues])
    columns = {status: Column(status, title, 0) for status, title in COLUMNS}
    for key, count in counts.items():
        columns[column_of("closed" if key == "closed" else "open", key)].count += count
    for issue in issues:
        found = seen.get((issue.repository_id, issue.number))
        card = Card(
            repository=issue.repository,
            number=issue.number,
            title=issue.title,
            state=issue.state,
            column=column_of(issue.state, issue.status),
            priority=priority_name(issue.priority),
            created_at=issue.created_at,
            updated_at=_latest(issue.updated_at, found.last_comment_at if found else None),
            closed_at=issue.closed_at,
        )
        columns[card.column].cards.append(card)
    return Board(
        customer=customer,
        columns=list(columns.values()),
        total=total,
        page=page,
        pages=max(1, -(-total // per_page)),
        per_page=per_page,
        show_closed=show_closed,
    )


@dataclass(frozen=True)
class Entry:
    """One line of the public timeline."""

    at: datetime
    kind: str  # opened, status, run, pull_request, closed
    text: str
    state: str | None = None
    run_id: int | None = None
    live: bool = False
    url: str | None = None
    ended_at: datetime | None = None

    def as_json(self, base_url: str) -> dict[str, Any]:
        data: dict[str, Any] = {"at": self.at.isoformat(), "kind": self.kind, "text": self.text}
        if self.state is not None:
            data["state"] = self.state
        if self.ended_at is not None:
            data["ended_at"] = self.ended_at.isoformat()
        if self.url is not None:
            data["url"] = self.url
        if self.run_id is not None:
            data["run"] = self.run_id
            if self.live:
                # Opened with the same portal token: `?token=` (EventSource sends no headers).
                data["stream_url"] = f"{base_url}/runs/{self.run_id}"
        return data


@dataclass(frozen=True)
class IssuePage:
    customer: Customer
    repository: str
    number: int
    title: str
    state: str
    status: Status
    priority: str | None
    created_at: datetime | None
    updated_at: datetime | None
    closed_at: datetime | None
    body: str | None
    timeline: list[Entry]

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "customer": public_customer(self.customer),
            "issue": {
                "repository": self.repository,
                "number": self.number,
                "title": self.title,
                "state": self.state,
                "status": self.status.value,
                "priority": self.priority,
                "created_at": _iso(self.created_at),
                "updated_at": _iso(self.updated_at),
                "closed_at": _iso(self.closed_at),
                "body": self.body,
            },
            "timeline": [entry.as_json(base_url) for entry in self.timeline],
        }


def is_alert_issue(body: str) -> bool:
    return ALERT_MARKER in body


async def issue_page(customer: Customer, repository: str, number: int) -> IssuePage | None:
    """The issue as the customer may see it; None unless they follow it."""
    found = None
    async with engine.transaction():  # one connection for every read of the page
        issue = await boards.labelled_issue(
            customer.installation_id, repository, number, customer.label
        )
        repository_ids = await installations.repository_ids(customer.installation_id)
        if issue is not None and issue.repository_id in repository_ids:
            found = (issue, await _records(issue))
    if found is None:
        return None
    issue, (config, seen, changes, issue_runs, pulls) = found
    key = (issue.repository_id, issue.number)
    # Never an alert's body (production data), whatever the repository says.
    shown = config.portal.show_body and not is_alert_issue(issue.body)
    comments = seen.get(key)
    return IssuePage(
        customer=customer,
        repository=issue.repository,
        number=issue.number,
        title=issue.title,
        state=issue.state,
        status=column_of(issue.state, issue.status),
        priority=priority_name(issue.priority),
        created_at=issue.created_at,
        updated_at=_latest(issue.updated_at, comments.last_comment_at if comments else None),
        closed_at=issue.closed_at,
        body=issue.body if shown else None,
        timeline=_timeline(issue, changes, issue_runs, pulls),
    )


async def _records(
    issue: cache.CachedIssue,
) -> tuple[
    repo_config.RepoConfig,
    dict[tuple[int, int], activity.Activity],
    list[state.StatusChange],
    list[runs.Run],
    list[activity.PullRequest],
]:
    return (
        await repo_config.cached(issue.repository),
        await activity.for_issues([(issue.repository_id, issue.number)]),
        await state.status_history(issue.repository, issue.number),
        await runs.for_issue(issue.repository, issue.number, limit=50),
        await activity.pull_requests(issue.repository_id, issue.number),
    )


def _timeline(
    issue: cache.CachedIssue,
    changes: list[state.StatusChange],
    issue_runs: list[runs.Run],
    known: list[activity.PullRequest],
) -> list[Entry]:
    entries: list[Entry] = []
    if issue.created_at is not None:
        entries.append(Entry(issue.created_at, "opened", "Issue opened"))
    for change in changes:
        title = STATUS_TITLES[change.status]
        entries.append(Entry(change.at, "status", f"Status: {title}", state=change.status.value))
    for run in issue_runs:
        if run.state is RunState.REFUSED:
            continue  # never started: an internal decision (budgets, gates), not activity
        entries.append(
            Entry(
                run.started_at or run.dispatched_at or run.created_at,
                "run",
                f"Agent {run.mode.heading.lower()}",
                state=RUN_STATES.get(run.state, run.state.value),
                run_id=run.id,
                live=run.state.active,
                ended_at=run.finished_at,
            )
        )
    pulls = {pull.number: pull for pull in known}
    for run in issue_runs:
        # An agent's PR is known from its report even before (or without) GitHub's webhook.
        if run.pr_number is not None and run.pr_number not in pulls:
            pulls[run.pr_number] = activity.PullRequest(
                run.pr_number, run.pr_url, "open", run.finished_at or run.created_at, None
            )
    for pull in pulls.values():
        at = pull.opened_at or issue.created_at
        if at is None:
            continue
        entries.append(
            Entry(
                at,
                "pull_request",
                f"Pull request #{pull.number}",
                state=pull.state,
                # An agent reports its PR's URL: link only to what is plainly a web address.
                url=pull.url if pull.url and pull.url.startswith("https://") else None,
                ended_at=pull.closed_at,
            )
        )
    if issue.state == "closed" and issue.closed_at is not None:
        entries.append(Entry(issue.closed_at, "closed", "Issue closed"))
    entries.sort(key=lambda entry: entry.at)
    return entries
