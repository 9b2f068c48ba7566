"""Webhooks of the remediation room: alert deliveries, merged fixes of alert issues (which start
their verification), deployments (which start fix windows)."""

from __future__ import annotations

from app.agents import pull_requests
from app.events import Event, Router
from app.remediation import fixes, pipeline
from app.runtime import Runtime

router = Router()


@router.on("grafana_alert")
@router.on("sentry_issue")
@router.on("sentry_event_alert")
async def alert_received(event: Event, rt: Runtime) -> None:
    await pipeline.record(event, rt)


@router.on("pull_request", "closed")
async def fix_merged(event: Event, rt: Runtime) -> None:
    """A merged PR that fixes an alert issue starts watching the fix (`status/verifying`)."""
    if event.installation_id is None or not event.payload["pull_request"].get("merged"):
        return
    numbers, _ = await pull_requests.fixed_issues(event, rt)
    for number in sorted(numbers):
        await fixes.start_if_alert_issue(rt, event, number)


@router.on("deployment_status", "created")
async def deployment_finished(event: Event, rt: Runtime) -> None:
    await fixes.on_deployment(rt, event)
