"""What the portal keeps from webhooks so that its pages and the health view never ask GitHub:
per issue, when the team first answered and when anyone last commented (`portal_issue_activity`,
never the comments themselves), and the pull requests that fix it (`portal_pull_request`).

"The team" is a person with write permission on the repository (asked of GitHub when the comment
arrives, cached a minute, and only while the issue still has no team response), the App itself,
or an agent (a bot the repository allows in `allowed_bots`). Issues that were commented on before
Dispatch saw them are read once from GitHub when a customer starts following them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from githubkit import GitHub

from app.clock import parse_timestamp
from app.db import engine
from app.events import is_bot
from app.github import rest
from app.github.permissions import Permission
from app.issues import repo_config
from app.issues.labels import CUSTOMER_PREFIX
from app.runtime import Runtime

TEAM_PERMISSION = Permission.WRITE


@dataclass(frozen=True)
class Activity:
    first_team_response_at: datetime | None
    last_comment_at: datetime | None


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str | None
    state: str
    opened_at: datetime | None
    closed_at: datetime | None


async def is_team(rt: Runtime, client: GitHub, repository: str, user: dict[str, Any]) -> bool:
    login = str(user.get("login") or "")
    if not login:
        return False
    if await rt.github.is_self(login):
        return True
    if is_bot(user):
        return (await repo_config.cached(repository)).bot_allowed(login)
    return await rt.permissions.level(client, repository, login) >= TEAM_PERMISSION


async def has_team_response(repository_id: int, number: int) -> bool:
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT first_team_response_at IS NOT NULL FROM portal_issue_activity "
                "WHERE repository_id = $1 AND number = $2",
                repository_id,
                number,
            )
        )


async def record_comment(repository_id: int, number: int, at: datetime, *, by_team: bool) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            """
            INSERT INTO portal_issue_activity (repository_id, number, first_team_response_at,
                last_comment_at)
            VALUES ($1, $2, CASE WHEN $4 THEN $3::timestamptz END, $3)
            ON CONFLICT (repository_id, number) DO UPDATE SET
                first_team_response_at = CASE WHEN $4 THEN least(
                    portal_issue_activity.first_team_response_at, $3) ELSE
                    portal_issue_activity.first_team_response_at END,
                last_comment_at = greatest(portal_issue_activity.last_comment_at, $3)
            """,
            repository_id,
            number,
            at,
            by_team,
        )


async def on_comment(rt: Runtime, installation_id: int, payload: dict[str, Any]) -> None:
    """An `issue_comment.created` on an issue a customer follows (others cost nothing: no row, no
    GitHub call; an issue followed later has its earlier comments read by `backfill`)."""
    issue, comment, repository = payload["issue"], payload["comment"], payload["repository"]
    labels = [str((label or {}).get("name") or "") for label in issue.get("labels") or []]
    if "pull_request" in issue or not any(name.startswith(CUSTOMER_PREFIX) for name in labels):
        return
    at = parse_timestamp(comment.get("created_at")) or rt.clock.now()
    by_team = False
    if not await has_team_response(repository["id"], issue["number"]):
        client = rt.github.installation(installation_id)
        by_team = await is_team(rt, client, repository["full_name"], comment.get("user") or {})
    await record_comment(repository["id"], issue["number"], at, by_team=by_team)


async def backfill(
    rt: Runtime, installation_id: int, repository: str, repository_id: int, number: int
) -> bool:
    """Read an issue's comments once (when a customer starts following it): the first team
    response and the last comment from before Dispatch was listening. False if done before."""
    async with engine.connection() as connection:
        done = await connection.fetchval(
            "SELECT backfilled_at IS NOT NULL FROM portal_issue_activity "
            "WHERE repository_id = $1 AND number = $2",
            repository_id,
            number,
        )
    if done:
        return False
    client = rt.github.installation(installation_id)
    first_team: datetime | None = None
    last: datetime | None = None
    for comment in await rest.comments(client, repository, number):
        at = parse_timestamp(comment.get("created_at"))
        if at is None:
            continue
        last = max(last, at) if last else at
        earlier = first_team is None or at < first_team
        if earlier and await is_team(rt, client, repository, comment.get("user") or {}):
            first_team = at
    async with engine.connection() as connection:
        await connection.execute(
            """
            INSERT INTO portal_issue_activity (repository_id, number, first_team_response_at,
                last_comment_at, backfilled_at)
            VALUES ($1, $2, $3, $4, now())
            ON CONFLICT (repository_id, number) DO UPDATE SET
                first_team_response_at = CASE
                    WHEN portal_issue_activity.first_team_response_at IS NULL THEN $3
                    WHEN $3::timestamptz IS NULL THEN portal_issue_activity.first_team_response_at
                    ELSE least(portal_issue_activity.first_team_response_at, $3) END,
                last_comment_at = greatest(portal_issue_activity.last_comment_at, $4),
                backfilled_at = now()
            """,
            repository_id,
            number,
            first_team,
            last,
        )
    return True


async def for_issues(keys: list[tuple[int, int]]) -> dict[tuple[int, int], Activity]:
    """Activity of some issues, by (repository id, number); issues without any are absent."""
    if not keys:
        return {}
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT a.repository_id, a.number, a.first_team_response_at, a.last_comment_at "
            "FROM portal_issue_activity a JOIN unnest($1::bigint[], $2::int[]) AS k(r, n) "
            "ON a.repository_id = k.r AND a.number = k.n",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
    return {
        (row["repository_id"], row["number"]): Activity(
            row["first_team_response_at"], row["last_comment_at"]
        )
        for row in rows
    }


async def record_pull_request(
    repository_id: int, issue_numbers: set[int], pull_request: dict[str, Any]
) -> None:
    """A pull request that fixes these issues, as it is now (open, merged or closed)."""
    if not issue_numbers:
        return
    if pull_request.get("merged") or pull_request.get("merged_at"):
        state = "merged"
    else:
        state = "closed" if pull_request.get("state") == "closed" else "open"
    closed_at = parse_timestamp(pull_request.get("merged_at") or pull_request.get("closed_at"))
    async with engine.connection() as connection:
        await connection.executemany(
            """
            INSERT INTO portal_pull_request (repository_id, issue_number, number, url, state,
                opened_at, closed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (repository_id, issue_number, number) DO UPDATE SET
                url = EXCLUDED.url, state = EXCLUDED.state,
                opened_at = coalesce(portal_pull_request.opened_at, EXCLUDED.opened_at),
                closed_at = EXCLUDED.closed_at, updated_at = now()
            """,
            [
                (
                    repository_id,
                    number,
                    int(pull_request["number"]),
                    pull_request.get("html_url"),
                    state,
                    parse_timestamp(pull_request.get("created_at")),
                    closed_at if state != "open" else None,
                )
                for number in sorted(issue_numbers)
            ],
        )


async def pull_requests(repository_id: int, number: int) -> list[PullRequest]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT number, url, state, opened_at, closed_at FROM portal_pull_request "
            "WHERE repository_id = $1 AND issue_number = $2 ORDER BY opened_at, number",
            repository_id,
            number,
        )
    return [PullRequest(**dict(row)) for row in rows]
