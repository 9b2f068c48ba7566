"""Webhooks the portal keeps what it needs from: comments (who answered first, when anyone last
did; never what they said), pull requests that fix an issue, and an issue gaining a
`customer/<slug>` label (its earlier comments are read once, in a job)."""

from __future__ import annotations

from app import jobs, queue
from app.agents import pull_requests
from app.events import Event, Router
from app.issues.labels import CUSTOMER_PREFIX
from app.portal import activity
from app.runtime import Runtime

router = Router()


@router.on("issue_comment", "created")
async def comment_activity(event: Event, rt: Runtime) -> None:
    if event.installation_id is None or "repository" not in event.payload:
        return
    await activity.on_comment(rt, event.installation_id, event.payload)


@router.on("issues", "labeled")
async def started_following(event: Event, rt: Runtime) -> None:
    label = (event.payload.get("label") or {}).get("name") or ""
    if event.installation_id is None or not label.startswith(CUSTOMER_PREFIX):
        return
    repository, issue = event.payload["repository"], event.payload["issue"]
    await queue.enqueue(
        jobs.PORTAL_BACKFILL_ACTIVITY,
        {
            "installation_id": event.installation_id,
            "repository": repository["full_name"],
            "repository_id": repository["id"],
            "number": issue["number"],
        },
        dedupe_key=f"portal-activity:{repository['id']}:{issue['number']}",
    )


@router.on("pull_request", "opened", "reopened", "edited", "ready_for_review", "closed")
async def linked_pull_request(event: Event, rt: Runtime) -> None:
    if event.installation_id is None or "repository" not in event.payload:
        return
    numbers, _ = await pull_requests.fixed_issues(event, rt)
    await activity.record_pull_request(
        event.payload["repository"]["id"], numbers, event.payload["pull_request"]
    )
