"""Filling the issue cache from GitHub: every open issue and those closed in the last 30 days
when a repository is onboarded (`fill`, telling its progress page by page), and the issues
updated since a moment when the reconcile job repairs what webhooks missed (`refresh_since`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.clock import parse_timestamp
from app.github import rest
from app.issues import cache
from app.runtime import Runtime


@dataclass(frozen=True)
class Progress:
    """Where a backfill is, after each page GitHub answered."""

    repository: str
    # "open", then "closed" (those closed in the last 30 days).
    phase: str
    # Issues and pull requests GitHub listed so far in this phase (it lists them together).
    listed: int
    # How many GitHub says it will list in this phase: open issues and pull requests (the
    # repository's `open_issues_count`); None for the closed ones (GitHub does not say).
    expected: int | None
    # Issues cached so far, both phases (pull requests are not cached).
    cached: int
    done: bool = False


async def fill(
    rt: Runtime,
    installation_id: int,
    repository: str,
    progress: Callable[[Progress], None] | None = None,
) -> int:
    """Cache every open issue and those closed in the last 30 days. Returns how many; tells
    `progress` after every page."""
    client = rt.github.installation(installation_id)
    data = await rest.get_repository(client, repository)
    repo = {"id": data["id"], "full_name": data["full_name"]}
    expected = data.get("open_issues_count")
    total = listed = 0

    def tell(phase: str, expected: int | None, done: bool = False) -> None:
        if progress is not None:
            progress(Progress(repository, phase, listed, expected, total, done))

    async for page in rest.list_issues(client, repository, state="open"):
        total += await cache.store_many(installation_id, repo, page)
        listed += len(page)
        tell("open", max(expected or 0, listed))
    listed = 0
    since = (rt.clock.now() - cache.CLOSED_WINDOW).isoformat()
    async for page in rest.list_issues(client, repository, state="closed", since=since):
        cutoff = rt.clock.now() - cache.CLOSED_WINDOW
        recent = [i for i in page if (parse_timestamp(i.get("closed_at")) or cutoff) >= cutoff]
        total += await cache.store_many(installation_id, repo, recent)
        listed += len(page)
        tell("closed", None)
    tell("closed", None, done=True)
    return total


async def refresh_since(
    rt: Runtime, installation_id: int, repository: str, since: datetime
) -> list[dict[str, Any]]:
    """Re-read issues updated since `since` (any state) into the cache; returns them."""
    client = rt.github.installation(installation_id)
    repo = await _repository(client, repository)
    seen: list[dict[str, Any]] = []
    async for page in rest.list_issues(client, repository, state="all", since=since.isoformat()):
        issues = [i for i in page if "pull_request" not in i]
        await cache.store_many(installation_id, repo, issues)
        seen += issues
    return seen


async def _repository(client: Any, repository: str) -> dict[str, Any]:
    data = await rest.get_repository(client, repository)
    return {"id": data["id"], "full_name": data["full_name"]}
