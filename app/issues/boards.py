"""The issue cache read by label, as a customer's board shows it: the issues carrying the
customer's label (never deleted or transferred ones), a page at a time, most urgent first, the
count per status column, and one issue only if it carries the label."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.db import engine
from app.issues import cache


@dataclass(frozen=True)
class Card:
    """What a board shows of an issue (no body): the customer portal's read of the cache."""

    repository_id: int
    repository: str
    number: int
    title: str
    state: str
    status: str | None
    priority: str | None
    created_at: datetime | None
    updated_at: datetime | None
    closed_at: datetime | None


_CARD = (
    "repository_id, repository, number, title, state, status, priority, created_at, updated_at, "
    "closed_at"
)


async def labelled(
    installation_id: int,
    label: str,
    repository_ids: list[int],
    *,
    include_closed: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[int, list[Card]]:
    """(total, one page) of the issues of an installation's repositories carrying `label`
    (deleted and transferred ones never), most urgent first, then most recently updated."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT {_CARD}, count(*) OVER () AS total FROM issue "
            "WHERE installation_id = $1 AND repository_id = ANY($2::bigint[]) "
            "AND labels @> ARRAY[$3]::text[] AND NOT deleted AND ($4 OR state = 'open') "
            "ORDER BY coalesce(priority, 'priority/p9'), updated_at DESC NULLS LAST, number "
            "LIMIT $5 OFFSET $6",
            installation_id,
            repository_ids,
            label,
            include_closed,
            limit,
            offset,
        )
        total = rows[0]["total"] if rows else 0
        if not rows and offset:
            total = await connection.fetchval(
                "SELECT count(*) FROM issue WHERE installation_id = $1 "
                "AND repository_id = ANY($2::bigint[]) AND labels @> ARRAY[$3]::text[] "
                "AND NOT deleted AND ($4 OR state = 'open')",
                installation_id,
                repository_ids,
                label,
                include_closed,
            )
    cards = []
    for row in rows:
        data = dict(row)
        data.pop("total")
        cards.append(Card(**data))
    return int(total), cards


async def labelled_by_status(
    installation_id: int, label: str, repository_ids: list[int], *, include_closed: bool = False
) -> dict[str | None, int]:
    """How many issues carrying `label` are in each status (None: no status label), and
    `"closed"` for the closed ones when they are included."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT CASE WHEN state = 'closed' THEN 'closed' ELSE status END AS column, "
            "count(*) AS n FROM issue WHERE installation_id = $1 "
            "AND repository_id = ANY($2::bigint[]) AND labels @> ARRAY[$3]::text[] "
            "AND NOT deleted AND ($4 OR state = 'open') GROUP BY 1",
            installation_id,
            repository_ids,
            label,
            include_closed,
        )
    return {row["column"]: int(row["n"]) for row in rows}


async def labelled_issue(
    installation_id: int, repository: str, number: int, label: str
) -> cache.CachedIssue | None:
    """One issue of the installation, only if it carries `label` and still exists there."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {cache.COLUMNS} FROM issue "
            "WHERE lower(repository) = lower($1) AND number = $2 AND installation_id = $3 "
            "AND labels @> ARRAY[$4]::text[] AND NOT deleted",
            repository,
            number,
            installation_id,
            label,
        )
    return cache.CachedIssue(**dict(row)) if row else None
