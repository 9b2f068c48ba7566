"""The scheduled reconcile: re-read issues updated since the last pass (GitHub's `since`
filter) into the cache and repair drift — labels changed while Dispatch was down, closed issues
without `status/done`, two status or priority labels left behind by a missed webhook."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from app.db import bookmarks
from app.github import rest
from app.github.repo import Repo
from app.installations import service as installations
from app.issues import backfill, state
from app.issues.labels import Status, family
from app.runtime import Runtime

log = logging.getLogger(__name__)

FIRST_LOOKBACK = timedelta(days=1)
OVERLAP = timedelta(minutes=10)


async def run(rt: Runtime) -> dict[str, int]:
    if not rt.credentials.configured:
        return {"repositories": 0, "issues": 0, "repaired": 0}
    started = rt.clock.now()
    totals = {"repositories": 0, "issues": 0, "repaired": 0}
    for repo in await installations.active_repositories():
        bookmark = f"reconcile:{Repo.parse(repo['full_name']).key}"
        since = (await bookmarks.last_run(bookmark) or started - FIRST_LOOKBACK) - OVERLAP
        try:
            issues = await backfill.refresh_since(
                rt, repo["installation_id"], repo["full_name"], since
            )
            repaired = await _repair(rt, repo["installation_id"], repo["full_name"], issues)
        except Exception:
            log.exception(
                "reconcile failed for a repository", extra={"repository": repo["full_name"]}
            )
            continue
        await bookmarks.save_run(bookmark, started)
        totals["repositories"] += 1
        totals["issues"] += len(issues)
        totals["repaired"] += repaired
    return totals


async def _repair(
    rt: Runtime, installation_id: int, repository: str, issues: list[dict[str, Any]]
) -> int:
    client = rt.github.installation(installation_id)
    actor = await rt.github.bot_login()
    repaired = 0
    for issue in issues:
        labels = [label["name"] for label in issue.get("labels") or []]
        number = issue["number"]
        statuses = [name for name in labels if family(name) == "status/"]
        if issue.get("state") == "closed" and statuses != [Status.DONE.value]:
            if statuses and Status.VERIFYING.value in statuses:
                continue  # closed while verifying is a human decision; leave it
            repaired += await state.move_to(
                client,
                rt,
                repository,
                number,
                Status.DONE,
                actor=actor,
                reason="reconcile: closed issue",
                installation_id=installation_id,
            )
            continue
        for prefix in ("status/", "priority/"):
            same = [name for name in labels if family(name) == prefix]
            if len(same) > 1:
                # The webhook that would have decided was missed; keep the most advanced status
                # (or the most urgent priority) and drop the rest.
                order = [s.value for s in Status] if prefix == "status/" else sorted(same)
                keep = max(same, key=order.index) if prefix == "status/" else order[0]
                for name in same:
                    if name != keep:
                        await rest.remove_label(client, repository, number, name)
                        repaired += 1
    return repaired
