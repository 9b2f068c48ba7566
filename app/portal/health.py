"""How a customer's issues are doing, for the people who look after the customer.

Counted over the open issues the customer follows:

- `critical`: priority p0 or p1;
- `stale`: no update for 3 days (an update is any change GitHub reports on the issue, or a comment);
- `critical_stale`: critical and no update for 2 days;
- `unresponded`: nobody from the team (write permission, the App, an agent) has commented yet.

Also `last_activity` (the newest update of any followed issue that is open, or was closed in the
last 30 days) and the median time from opening to the team's first comment over every followed
issue that has one.

The score starts at 100 and loses:

- 10 points per critical issue, 20 if it is also critical-stale (at most 40 in all);
- 30 times the share of open issues nobody from the team has answered;
- 20 times the share of open issues that are stale;
- 10 when nothing moved on any followed issue for 7 days while some are open.

It never goes below 0; with no open issue it is 100.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.installations import service as installations
from app.issues import boards
from app.issues.labels import Priority
from app.portal import activity
from app.portal.customers import Customer

STALE_AFTER = timedelta(days=3)
CRITICAL_STALE_AFTER = timedelta(days=2)
QUIET_AFTER = timedelta(days=7)
RECENTLY_CLOSED = timedelta(days=30)
CRITICAL = (Priority.P0.value, Priority.P1.value)


@dataclass(frozen=True)
class Health:
    open: int
    critical: int
    stale: int
    critical_stale: int
    unresponded: int
    last_activity: datetime | None
    median_first_response_hours: float | None
    score: int

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["last_activity"] = self.last_activity.isoformat() if self.last_activity else None
        return data


def score(
    *,
    open: int,
    critical: int,
    critical_stale: int,
    stale: int,
    unresponded: int,
    quiet: bool,
) -> int:
    if open == 0:
        return 100
    lost: float = min(40, 10 * (critical - critical_stale) + 20 * critical_stale)
    lost += 30 * unresponded / open
    lost += 20 * stale / open
    lost += 10 if quiet else 0
    return max(0, round(100 - lost))


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def _counts_for_activity(issue: boards.Card, now: datetime) -> bool:
    """Open, or closed in the last 30 days: an issue closed long ago that someone touches again
    is not news about how the customer's issues are doing."""
    if issue.state == "open":
        return True
    closed = issue.closed_at or issue.updated_at
    return closed is not None and now - closed <= RECENTLY_CLOSED


async def of(customer: Customer, now: datetime) -> Health:
    repository_ids = await installations.repository_ids(customer.installation_id)
    _, issues = await boards.labelled(
        customer.installation_id, customer.label, repository_ids, include_closed=True
    )
    seen = await activity.for_issues([(i.repository_id, i.number) for i in issues])
    counts = {"open": 0, "critical": 0, "stale": 0, "critical_stale": 0, "unresponded": 0}
    last_activity: datetime | None = None
    waits: list[float] = []
    for issue in issues:
        found = seen.get((issue.repository_id, issue.number))
        updated = _latest(issue.updated_at, found.last_comment_at if found else None)
        if _counts_for_activity(issue, now):
            last_activity = _latest(last_activity, updated)
        answered = found.first_team_response_at if found else None
        if answered is not None and issue.created_at is not None:
            waits.append(max(0.0, (answered - issue.created_at).total_seconds() / 3600))
        if issue.state != "open":
            continue
        idle = now - updated if updated else timedelta.max
        critical = issue.priority in CRITICAL
        counts["open"] += 1
        counts["critical"] += critical
        counts["stale"] += idle > STALE_AFTER
        counts["critical_stale"] += critical and idle > CRITICAL_STALE_AFTER
        counts["unresponded"] += answered is None
    quiet = last_activity is None or now - last_activity > QUIET_AFTER
    return Health(
        **counts,
        last_activity=last_activity,
        median_first_response_hours=round(statistics.median(waits), 2) if waits else None,
        score=score(**counts, quiet=quiet),
    )
