"""`POST /webhooks/grafana` (bearer token) and `POST /webhooks/sentry` (HMAC signature): verify,
journal, answer. The alert pipeline runs in the worker."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Response, post

from app.health.metrics import WEBHOOKS
from app.intake import bodies, journal
from app.intake.signatures import verify_bearer, verify_sentry
from app.runtime import Runtime
from app.web.errors import error

MAX_ALERT_BODY = 5 * 1024 * 1024
SENTRY_RESOURCES = {"issue", "event_alert"}


def _parse(body: bytes) -> dict[str, Any] | Response[dict[str, Any]]:
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return error(400, f"body is not valid JSON: {exc}")
    if not isinstance(payload, dict):
        return error(400, "body must be a JSON object")
    return payload


def _grafana_problem(payload: dict[str, Any]) -> str | None:
    """What makes `payload` no Grafana notification (the fields the alert pipeline reads)."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        return "`alerts` must be a list"
    status = payload.get("status")
    if status is not None and not (isinstance(status, str) and status.isprintable()):
        return "`status` must be a string"
    for index, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            return f"`alerts[{index}]` must be an object"
        for key in ("labels", "annotations"):
            if key not in alert:
                continue
            value = alert[key]
            if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                return f"`alerts[{index}].{key}` must be an object of strings"
    return None


def _no_repository(rt: Runtime) -> Response[dict[str, Any]] | None:
    if rt.settings.dispatch_alerts_repo is None and not rt.settings.dispatch_alerts_repo_map:
        return error(503, "alerts are not configured: set DISPATCH_ALERTS_REPO to owner/name")
    return None


@post("/webhooks/grafana", status_code=202, request_max_body_size=MAX_ALERT_BODY)
async def grafana_webhook(request: Request, rt: Runtime) -> Response[dict[str, Any]]:
    token = rt.settings.grafana_webhook_token
    if not token:
        return error(503, "the Grafana webhook is not configured: set GRAFANA_WEBHOOK_TOKEN")
    if not verify_bearer(token, request.headers.get("authorization")):
        WEBHOOKS.labels("grafana", "bad_token").inc()
        return error(401, "missing or wrong bearer token")
    if (refusal := _no_repository(rt)) is not None:
        return refusal
    body = await bodies.read(request, MAX_ALERT_BODY)
    if isinstance(body, Response):
        return body
    payload = _parse(body)
    if isinstance(payload, Response):
        return payload
    if (problem := _grafana_problem(payload)) is not None:
        return error(400, f"not a Grafana alert notification: {problem}")
    guid = f"grafana:{uuid.uuid4()}"
    await journal.record(
        journal.Inbound(
            guid=guid,
            event="grafana_alert",
            action=payload.get("status") or "firing",
            installation_id=None,
            repository=None,
            body=body.decode(),
            received_at=rt.clock.now(),
            source="grafana",
        ),
        handled=True,
    )
    WEBHOOKS.labels("grafana", "accepted").inc()
    return Response({"delivery": guid, "alerts": len(payload["alerts"])}, status_code=202)


@post("/webhooks/sentry", status_code=202, request_max_body_size=MAX_ALERT_BODY)
async def sentry_webhook(request: Request, rt: Runtime) -> Response[dict[str, Any]]:
    secret = rt.settings.sentry_client_secret
    if not secret:
        return error(503, "the Sentry webhook is not configured: set SENTRY_CLIENT_SECRET")
    signature = request.headers.get("sentry-hook-signature")
    if not signature:
        WEBHOOKS.labels("sentry", "bad_signature").inc()
        return error(401, "missing or invalid Sentry-Hook-Signature")
    body = await bodies.read(request, MAX_ALERT_BODY)
    if isinstance(body, Response):
        return body
    if not verify_sentry(secret, body, signature):
        WEBHOOKS.labels("sentry", "bad_signature").inc()
        return error(401, "missing or invalid Sentry-Hook-Signature")
    resource = request.headers.get("sentry-hook-resource")
    if not resource:
        return error(400, "missing Sentry-Hook-Resource header")
    if (refusal := _no_repository(rt)) is not None:
        return refusal
    payload = _parse(body)
    if isinstance(payload, Response):
        return payload
    request_id = request.headers.get("request-id")
    guid = f"sentry:{request_id}" if request_id else f"sentry:{uuid.uuid4()}"
    handled = resource in SENTRY_RESOURCES
    stored = await journal.record(
        journal.Inbound(
            guid=guid,
            event=f"sentry_{resource}",
            action=payload.get("action") if isinstance(payload.get("action"), str) else None,
            installation_id=None,
            repository=None,
            body=body.decode(),
            received_at=rt.clock.now(),
            source="sentry",
        ),
        handled=handled,
    )
    WEBHOOKS.labels("sentry", "accepted" if stored else "duplicate").inc()
    if not stored:
        return Response({"delivery": guid, "duplicate": True}, status_code=200)
    return Response({"delivery": guid, "duplicate": False, "handled": handled}, status_code=202)


routes = [grafana_webhook, sentry_webhook]
