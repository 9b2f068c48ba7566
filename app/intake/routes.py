"""`POST /webhooks/github`: verify the signature, journal, queue, answer, in milliseconds."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post

from app.events import Router
from app.health.metrics import WEBHOOKS
from app.intake import bodies, journal
from app.intake.signatures import verify_github
from app.runtime import Runtime
from app.web.errors import error

# GitHub caps webhook payloads at 25 MB; Litestar's default limit (10 MB) would refuse some.
MAX_GITHUB_BODY = 25 * 1024 * 1024
# How a command begins (`app/commands/parser.py`, case-insensitive), looked for in the raw body
# of the deliveries that can bring one (README, Commands).
COMMAND_MARK = b"/dispatch"
COMMAND_SOURCES = {
    ("issue_comment", "created"),
    ("issues", "opened"),
    ("pull_request_review", "submitted"),
    ("pull_request_review_comment", "created"),
}


@post("/webhooks/github", request_max_body_size=MAX_GITHUB_BODY, status_code=202)
async def github_webhook(request: Request, rt: Runtime, router: Router) -> Response[dict[str, Any]]:
    credentials = rt.credentials.current()
    if credentials is None:
        return error(503, "the GitHub App is not configured yet; finish /setup first")
    signature = request.headers.get("x-hub-signature-256")
    if not signature:
        WEBHOOKS.labels("github", "bad_signature").inc()
        return error(401, "missing or invalid X-Hub-Signature-256")
    body = await bodies.read(request, MAX_GITHUB_BODY)
    if isinstance(body, Response):
        return body
    if not verify_github(credentials.webhook_secret, body, signature):
        WEBHOOKS.labels("github", "bad_signature").inc()
        return error(401, "missing or invalid X-Hub-Signature-256")
    event = request.headers.get("x-github-event")
    guid = request.headers.get("x-github-delivery")
    if not event:
        return error(400, "missing X-GitHub-Event header")
    if not guid:
        return error(400, "missing X-GitHub-Delivery header")
    try:
        action, installation_id, repository = _summary(body)
    except msgspec.DecodeError as exc:
        return error(400, f"body is not valid JSON: {exc}")
    except journal.MalformedPayload as exc:
        return error(400, f"not a GitHub webhook payload: {exc}")
    except ValueError:
        return error(400, "body must be a JSON object")

    stored = await journal.record(
        journal.Inbound(
            guid=guid,
            event=event,
            action=action,
            installation_id=installation_id,
            repository=repository,
            body=body,
            received_at=rt.clock.now(),
            # A cheap over-approximation (the text is parsed later): at worst a comment that
            # only mentions the command jumps the queue.
            carries_command=(event, action) in COMMAND_SOURCES and COMMAND_MARK in body.lower(),
        ),
        handled=router.handles(event, action),
    )
    WEBHOOKS.labels("github", "accepted" if stored else "duplicate").inc()
    if not stored:
        return Response({"delivery": guid, "duplicate": True}, status_code=200)
    if event == "ping":
        return Response({"delivery": guid, "duplicate": False, "pong": True}, status_code=200)
    return Response({"delivery": guid, "duplicate": False}, status_code=202)


class _Installation(msgspec.Struct):
    id: int | None = None


class _Repository(msgspec.Struct):
    full_name: str | None = None


class _Summary(msgspec.Struct):
    """The three fields intake reads; msgspec checks the whole body is JSON but builds nothing
    for the rest of it (the worker parses the payload)."""

    action: str | None = None
    installation: _Installation | None = None
    repository: _Repository | None = None


_summary_decoder = msgspec.json.Decoder(_Summary)


def _summary(body: bytes) -> tuple[str | None, int | None, str | None]:
    """(action, installation id, repository full name); raises msgspec.DecodeError for a body
    that is not JSON, journal.MalformedPayload for one whose fields are not shaped as GitHub
    sends them, ValueError for one that is not an object."""
    try:
        # The fast decoder skips fields it does not read without checking their text; JSON is
        # UTF-8, and a body that is not would fail the worker's parse after the 202.
        body.decode()
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError(f"not UTF-8: {exc}") from None
    try:
        summary = _summary_decoder.decode(body)
    except msgspec.ValidationError:
        # Not the usual shape (or not an object at all): read it the slow, lenient way.
        payload = msgspec.json.decode(body)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object") from None
        return journal.payload_summary(payload)
    # The same checks as for a fully parsed payload (ids in range, strings encodable).
    return journal.payload_summary(
        {
            "action": summary.action,
            "installation": {"id": summary.installation.id} if summary.installation else None,
            "repository": {"full_name": summary.repository.full_name}
            if summary.repository
            else None,
        }
    )


routes = [github_webhook]
