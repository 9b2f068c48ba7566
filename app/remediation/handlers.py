"""Webhooks of the remediation room: alert deliveries, deployments (which start fix windows).
Merged fixes are routed here by the agents room's pull request handler."""

from __future__ import annotations

from app.events import Event, router
from app.issues.state import CLOSED_STATUS_RULES
from app.remediation import fixes, pipeline
from app.runtime import Runtime

CLOSED_STATUS_RULES.append(fixes.closed_status)


@router.on("grafana_alert")
@router.on("sentry_issue")
@router.on("sentry_event_alert")
async def alert_received(event: Event, rt: Runtime) -> None:
    await pipeline.record(event, rt)


@router.on("deployment_status", "created")
async def deployment_finished(event: Event, rt: Runtime) -> None:
    await fixes.on_deployment(rt, event)
