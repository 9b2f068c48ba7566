"""The issue cache: a Postgres copy of each issue's title, body, state and labels, with the
derived status, priority and agents, kept fresh by webhooks, filled by a backfill, and repaired
by the reconcile job. It answers queries (the read API, status, claims, search); decisions that
matter re-read the live labels from GitHub.

A write never replaces a newer copy with an older one (`updated_at` decides), so out-of-order
webhooks cannot roll the cache back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.clock import parse_timestamp
from app.db import engine
from app.github import rest
from app.issues.labels import agents_of, priority_of, status_of
from app.runtime import Runtime

CLOSED_WINDOW = timedelta(days=30)

_UPSERT = """
INSERT INTO issue (installation_id, repository_id, repository, number, node_id, title, body,
    state, labels, assignees, author, status, priority, agents, created_at, updated_at,
    closed_at, deleted, cached_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, false, now())
ON CONFLICT (repository_id, number) DO UPDATE SET
    installation_id = EXCLUDED.installation_id, repository = EXCLUDED.repository,
    node_id = EXCLUDED.node_id, title = EXCLUDED.title, body = EXCLUDED.body,
    state = EXCLUDED.state, labels = EXCLUDED.labels, assignees = EXCLUDED.assignees,
    author = EXCLUDED.author, status = EXCLUDED.status, priority = EXCLUDED.priority,
    agents = EXCLUDED.agents, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
    closed_at = EXCLUDED.closed_at, deleted = false, cached_at = now()
WHERE issue.updated_at IS NULL OR EXCLUDED.updated_at >= issue.updated_at
"""


def _row(installation_id: int, repository: dict[str, Any], issue: dict[str, Any]) -> tuple:
    labels = sorted(label["name"] for label in issue.get("labels") or [])
    status = status_of(labels)
    priority = priority_of(labels)
    return (
        installation_id,
        repository["id"],
        repository["full_name"],
        issue["number"],
        issue.get("node_id"),
        issue.get("title") or "",
        issue.get("body") or "",
        issue.get("state") or "open",
        labels,
        sorted(a["login"] for a in issue.get("assignees") or []),
        (issue.get("user") or {}).get("login"),
        status.value if status else None,
        priority.value if priority else None,
        agents_of(labels),
        parse_timestamp(issue.get("created_at")),
        parse_timestamp(issue.get("updated_at")),
        parse_timestamp(issue.get("closed_at")),
    )


async def store(installation_id: int, repository: dict[str, Any], issue: dict[str, Any]) -> None:
    async with engine.connection() as connection:
        await connection.execute(_UPSERT, *_row(installation_id, repository, issue))


async def store_many(
    installation_id: int, repository: dict[str, Any], issues: list[dict[str, Any]]
) -> int:
    rows = [_row(installation_id, repository, i) for i in issues if "pull_request" not in i]
    if rows:
        async with engine.connection() as connection:
            await connection.executemany(_UPSERT, rows)
    return len(rows)


async def mark_deleted(repository_id: int, number: int) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE issue SET deleted = true, state = 'closed', cached_at = now() "
            "WHERE repository_id = $1 AND number = $2",
            repository_id,
            number,
        )


@dataclass(frozen=True)
class CachedIssue:
    installation_id: int
    repository_id: int
    repository: str
    number: int
    title: str
    body: str
    state: str
    labels: list[str]
    assignees: list[str]
    author: str | None
    status: str | None
    priority: str | None
    agents: list[str]
    created_at: datetime | None
    updated_at: datetime | None
    closed_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for key in ("created_at", "updated_at", "closed_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


COLUMNS = (
    "installation_id, repository_id, repository, number, title, body, state, labels, assignees, "
    "author, status, priority, agents, created_at, updated_at, closed_at"
)


# Issue numbers are Postgres integers: a larger one (from a URL or a body) names no issue.
MAX_NUMBER = 2**31 - 1


async def get(repository: str, number: int) -> CachedIssue | None:
    if not 0 < number <= MAX_NUMBER:
        return None
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {COLUMNS} FROM issue WHERE lower(repository) = lower($1) AND number = $2 "
            "AND NOT deleted",
            repository,
            number,
        )
    return CachedIssue(**dict(row)) if row else None


@dataclass(frozen=True)
class IssueFilter:
    repositories: list[str] | None = None  # None: all repositories
    state: str | None = "open"
    status: str | None = None
    priority: str | None = None
    agent: str | None = None
    owner: str | None = None
    type: str | None = None
    customer: str | None = None
    excluding: int | None = None  # with one repository: this issue is never listed


async def search(
    flt: IssueFilter, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[CachedIssue]]:
    """(total matching, one page), ordered by priority (p0 first), then oldest first."""
    where = ["NOT deleted"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if flt.repositories is not None:
        where.append(f"lower(repository) = ANY({arg([r.lower() for r in flt.repositories])})")
    if flt.state:
        where.append(f"state = {arg(flt.state)}")
    if flt.excluding is not None:
        where.append(f"number <> {arg(flt.excluding)}")
    if flt.status:
        where.append(f"status = {arg(_prefixed('status/', flt.status))}")
    if flt.priority:
        where.append(f"priority = {arg(_prefixed('priority/', flt.priority))}")
    for prefix, value in (
        ("agent/", flt.agent),
        ("owner/", flt.owner),
        ("type/", flt.type),
        ("customer/", flt.customer),
    ):
        if value:
            where.append(f"labels @> ARRAY[{arg(_prefixed(prefix, value))}]::text[]")
    clause = " AND ".join(where)
    async with engine.connection() as connection:
        total = await connection.fetchval(f"SELECT count(*) FROM issue WHERE {clause}", *args)
        rows = await connection.fetch(
            f"SELECT {COLUMNS} FROM issue WHERE {clause} "
            f"ORDER BY coalesce(priority, 'priority/p9'), created_at, number "
            f"LIMIT {arg(limit)} OFFSET {arg(offset)}",
            *args,
        )
    return total, [CachedIssue(**dict(row)) for row in rows]


async def issues_with_words(
    repository_id: int, words: list[str], *, state: str | None = None, limit: int = 10
) -> list[CachedIssue]:
    """Issues of a repository whose title or body contains the most of `words` (case
    insensitive), best first: search when there are no embeddings."""
    terms = [w.lower() for w in words if len(w) >= 3][:12]
    if not terms:
        return []
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"""
            SELECT {COLUMNS}, (
                SELECT count(*) FROM unnest($2::text[]) AS term
                WHERE strpos(lower(title || ' ' || body), term) > 0
            ) AS hits
            FROM issue
            WHERE repository_id = $1 AND NOT deleted AND ($3::text IS NULL OR state = $3)
            ORDER BY hits DESC, number DESC
            LIMIT $4
            """,
            repository_id,
            terms,
            state,
            limit,
        )
    return [
        CachedIssue(**{k: v for k, v in dict(row).items() if k != "hits"})
        for row in rows
        if row["hits"] > 0
    ]


async def lock_next_claimable(
    repositories: list[str] | None, types: list[str] | None, *, skip: list[str]
) -> CachedIssue | None:
    """Inside the caller's transaction: the most urgent, oldest open issue labelled
    `status/ready` with no `agent/*` label (among `repositories`, all when None; with one of
    `types`, any when None), its row locked `FOR UPDATE SKIP LOCKED` so concurrent claimers each
    get another issue and none waits. `skip` holds `"<repository_id>#<number>"` keys already
    tried in this claim (issues that drifted at GitHub)."""
    where = ["NOT deleted", "state = 'open'", "status = 'status/ready'", "agents = '{}'"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if repositories is not None:
        where.append(f"lower(repository) = ANY({arg([r.lower() for r in repositories])})")
    if types:
        where.append(f"labels && {arg([_prefixed('type/', t) for t in types])}::text[]")
    if skip:
        where.append(f"NOT (repository_id::text || '#' || number::text = ANY({arg(skip)}))")
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {COLUMNS} FROM issue WHERE {' AND '.join(where)} "
            "ORDER BY coalesce(priority, 'priority/p9'), created_at, number "
            "LIMIT 1 FOR UPDATE SKIP LOCKED",
            *args,
        )
    return CachedIssue(**dict(row)) if row else None


def issue_key(repository_id: int, number: int) -> str:
    """How `lock_next_claimable` names an issue to skip."""
    return f"{repository_id}#{number}"


async def refresh(
    rt: Runtime, installation_id: int, repository_id: int, repository: str, number: int
) -> dict[str, Any]:
    """Re-read one issue at GitHub into the cache (after Dispatch changed it, or found the copy
    stale); returns it as GitHub sent it."""
    client = rt.github.installation(installation_id)
    issue = await rest.get_issue(client, repository, number)
    await store(installation_id, {"id": repository_id, "full_name": repository}, issue)
    return issue


async def repository_ids(repositories: list[str]) -> list[int]:
    """The ids of the named repositories that have cached issues."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT DISTINCT repository_id FROM issue WHERE lower(repository) = ANY($1)",
            [r.lower() for r in repositories],
        )
    return [row["repository_id"] for row in rows]


async def by_ids(issue_ids: list[int]) -> dict[int, CachedIssue]:
    """Cached issues by their row id (what search's embeddings point at)."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT id, {COLUMNS} FROM issue WHERE id = ANY($1::bigint[]) AND NOT deleted",
            issue_ids,
        )
    found = {}
    for row in rows:
        data = dict(row)
        issue_id = data.pop("id")
        found[issue_id] = CachedIssue(**data)
    return found


async def search_words(
    text: str, repositories: list[str] | None, *, limit: int = 10
) -> list[tuple[CachedIssue, float]]:
    """Issues whose title or body contain the words of `text` (PostgreSQL full text search,
    English stemming; a title containing `text` as typed matches too), best match first, open
    ones before closed ones of equal rank. What search answers with when embeddings are off."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"""
            SELECT {COLUMNS}, score FROM (
                SELECT *, ts_rank(to_tsvector('english', title || ' ' || body), query)
                    + CASE WHEN title ILIKE $2 THEN 1 ELSE 0 END AS score
                FROM issue, websearch_to_tsquery('english', $1) AS query
                WHERE NOT deleted
                  AND ($3::text[] IS NULL OR lower(repository) = ANY($3))
                  AND (to_tsvector('english', title || ' ' || body) @@ query OR title ILIKE $2)
            ) AS found
            ORDER BY score DESC, state = 'open' DESC, updated_at DESC NULLS LAST
            LIMIT $4
            """,
            text,
            pattern,
            [r.lower() for r in repositories] if repositories is not None else None,
            limit,
        )
    results = []
    for row in rows:
        data = dict(row)
        score = float(data.pop("score"))
        results.append((CachedIssue(**data), score))
    return results


@dataclass(frozen=True)
class IndexableIssue:
    """What search needs to embed an issue and keep its listing current."""

    id: int
    installation_id: int
    repository_id: int
    repository: str
    number: int
    title: str
    body: str
    open: bool
    deleted: bool


_INDEXABLE = (
    "id, installation_id, repository_id, repository, number, title, body, "
    "state = 'open' AS open, deleted"
)


async def indexable(repository_id: int, number: int) -> IndexableIssue | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {_INDEXABLE} FROM issue WHERE repository_id = $1 AND number = $2",
            repository_id,
            number,
        )
    return IndexableIssue(**dict(row)) if row else None


async def changed_since(
    since: datetime | None, *, after_id: int = 0, repository_id: int | None = None, limit: int = 64
) -> list[IndexableIssue]:
    """Issues whose cached copy changed at or after `since` (every issue when None), in id order
    after `after_id`: how search walks the cache in batches."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT {_INDEXABLE} FROM issue WHERE id > $1 "
            "AND ($2::timestamptz IS NULL OR cached_at >= $2) "
            "AND ($3::bigint IS NULL OR repository_id = $3) ORDER BY id LIMIT $4",
            after_id,
            since,
            repository_id,
            limit,
        )
    return [IndexableIssue(**dict(row)) for row in rows]


@dataclass(frozen=True)
class Summary:
    number: int
    title: str
    state: str


async def summaries(repository_id: int, numbers: list[int]) -> dict[int, Summary]:
    """Number, title and state of some issues of one repository (for lists of neighbours)."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT number, title, state FROM issue WHERE repository_id = $1 "
            "AND number = ANY($2::int[])",
            repository_id,
            numbers,
        )
    return {row["number"]: Summary(**dict(row)) for row in rows}


def _prefixed(prefix: str, value: str) -> str:
    return value if value.startswith(prefix) else prefix + value
