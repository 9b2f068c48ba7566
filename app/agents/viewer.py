"""The run viewer: `GET /runs/{id}/stream` (Server-Sent Events: replay from `Last-Event-ID`, then
live, with a keep-alive every 15 s and an `end` event when the run finishes) and `GET
/runs/{id}`, the page that renders it. Both need a viewer token for that run; a wrong one is a
404, never a hint. A run whose log has expired (RUN_LOG_RETENTION_DAYS) still has its page, which
says so; its stream sends one `expired` event (the date) and then `end`."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from app.agents import plans, reports, runs, status_comment
from app.runtime import Runtime
from app.signing import InvalidToken
from app.stream import chunks, links
from app.stream.bus import StreamBus

KEEPALIVE_SECONDS = 15.0
GAP_WAIT = 2.0
NO_REFERRER = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _page_policy(script_nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{script_nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


async def _authorized_run(rt: Runtime, run_id: int, token: str | None) -> runs.Run:
    """The run, if `token` opens it; otherwise the same 404 whatever was wrong."""
    run = await runs.get(run_id)
    if run is None or not links.opens(rt, token, run_id, run.viewer_key):
        raise NotFoundException("no such run")
    return run


@get("/runs/{run_id:int}/stream", include_in_schema=False)
async def run_stream(
    rt: Runtime, request: Request, run_id: int, token: str | None = None
) -> ServerSentEvent:
    run = await _authorized_run(rt, run_id, token)
    header = request.headers.get("last-event-id", "0")
    last = int(header) if header.isdigit() else 0
    bus: StreamBus = request.app.state.bus
    limit = rt.settings.stream_viewers_per_run
    if bus.watching(run_id) >= limit:
        # A link can be shared; its holders must not be able to tie up a server's connections.
        raise HTTPException(
            status_code=429,
            detail=f"this run already has {limit} viewers here; try again later",
            headers={"Retry-After": "30"},
        )
    events = _expired(run) if run.log_expired_at is not None else _events(bus, run_id, last)
    return ServerSentEvent(
        events,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **NO_REFERRER},
    )


async def _events(bus: StreamBus, run_id: int, last: int) -> AsyncIterator[ServerSentEventMessage]:
    """Replay from `last`, then follow. Chunks are sent in seq order without gaps: one that
    arrives ahead of a missing one waits in `ahead` (a retried post may commit late) until the
    gap fills, or until GAP_WAIT says the missing seq will not come."""
    queue = bus.subscribe(run_id)
    ahead: dict[int, str] = {}
    gap_since: float | None = None
    try:
        yield ServerSentEventMessage(retry=2000, comment="stream open")
        for chunk in await chunks.since(run_id, last):
            yield _log(chunk.seq, chunk.data)
            last = chunk.seq
        run = await runs.get(run_id)
        if run is not None and run.state.finished:
            for chunk in await chunks.since(run_id, last):
                yield _log(chunk.seq, chunk.data)
            yield ServerSentEventMessage(event="end", data=run.state.value)
            return
        while True:
            message = await _next(queue, GAP_WAIT if ahead else KEEPALIVE_SECONDS)
            if message is None and not ahead:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            if message is not None and message.get("closing"):
                # This process is stopping: the browser reconnects from `last` to another one.
                return
            if message is not None and ("end" in message or message.get("resync")):
                # Everything committed before this point is in the table.
                for chunk in await chunks.since(run_id, last):
                    yield _log(chunk.seq, chunk.data)
                    last = chunk.seq
                ahead = {seq: data for seq, data in ahead.items() if seq > last}
                if "end" in message:
                    yield ServerSentEventMessage(event="end", data=str(message["end"]))
                    return
            elif message is not None:
                seq = int(message["seq"])
                if seq > last and "data" in message:
                    ahead[seq] = message["data"]
            while last + 1 in ahead:
                last += 1
                yield _log(last, ahead.pop(last))
            if not ahead:
                gap_since = None
                continue
            gap_since = gap_since or time.monotonic()
            if time.monotonic() - gap_since < GAP_WAIT:
                continue
            # The missing chunks may be committed with their notifications overtaken: read them.
            for chunk in await chunks.between(run_id, last, max(ahead)):
                ahead.setdefault(chunk.seq, chunk.data)
            for seq in sorted(ahead):  # what is still missing after that never came: skip it
                yield _log(seq, ahead.pop(seq))
                last = seq
            gap_since = None
    finally:
        bus.unsubscribe(run_id, queue)


async def _expired(run: runs.Run) -> AsyncIterator[ServerSentEventMessage]:
    assert run.log_expired_at is not None
    yield ServerSentEventMessage(event="expired", data=f"{run.log_expired_at:%Y-%m-%d}")
    yield ServerSentEventMessage(event="end", data=run.state.value)


async def _next(queue: asyncio.Queue[dict[str, Any]], wait: float) -> dict[str, Any] | None:
    # asyncio.timeout instead of wait_for: no task per message per viewer (less garbage).
    try:
        async with asyncio.timeout(wait):
            return await queue.get()
    except TimeoutError:
        return None


def _log(seq: int, data: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(id=seq, event="log", data=data)


@get("/runs/{run_id:int}", include_in_schema=False)
async def run_page(rt: Runtime, run_id: int, token: str | None = None) -> Template:
    run = await _authorized_run(rt, run_id, token)
    script_nonce = secrets.token_urlsafe(16)
    context: dict[str, Any] = {
        "run": run,
        "script_nonce": script_nonce,
        "stream_url": f"/runs/{run_id}/stream?token={token}",
        "issue_url": f"{rt.settings.github_web_url}/{run.repository}/issues/{run.issue_number}",
        "log_retention_days": rt.settings.run_log_retention_days,
    }
    return Template(
        template_name="run.html",
        context=context,
        headers={**NO_REFERRER, "Content-Security-Policy": _page_policy(script_nonce)},
    )


@get("/runs/{run_id:int}/plans/{revision:str}", include_in_schema=False)
async def full_plan(rt: Runtime, run_id: int, revision: str, token: str | None = None) -> Response:
    """A plan's whole text, as the agent wrote it (plain text: nothing in it renders)."""
    try:
        allowed = rt.signer.verify(plans.PLAN_LINK_PURPOSE, token or "") == (
            f"plan:{run_id}:{revision}"
        )
    except InvalidToken:
        allowed = False
    plan = await plans.by_revision(run_id, revision) if allowed else None
    if plan is None:
        raise NotFoundException("no such plan")
    return Response(
        plan.body,
        media_type="text/plain; charset=utf-8",
        headers={**NO_REFERRER, "Content-Security-Policy": "default-src 'none'; sandbox"},
    )


@get("/runs/{run_id:int}/report", include_in_schema=False)
async def full_report(rt: Runtime, run_id: int, token: str | None = None) -> Response:
    """A QA or research report's whole text, as the agent wrote it (plain text)."""
    try:
        allowed = rt.signer.verify(reports.REPORT_LINK_PURPOSE, token or "") == f"report:{run_id}"
    except InvalidToken:
        allowed = False
    run = await runs.get(run_id) if allowed else None
    if run is None or not run.report:
        raise NotFoundException("no such report")
    return Response(
        run.report,
        media_type="text/plain; charset=utf-8",
        headers={**NO_REFERRER, "Content-Security-Policy": "default-src 'none'; sandbox"},
    )


@get("/runs/{run_id:int}/summary", include_in_schema=False)
async def full_summary(rt: Runtime, run_id: int, token: str | None = None) -> Response:
    """A run's blocker and summary whole, as the agent wrote them, which its status comment cuts
    to fit GitHub's limit (plain text: nothing in it renders)."""
    try:
        allowed = rt.signer.verify(status_comment.SUMMARY_LINK_PURPOSE, token or "") == (
            f"summary:{run_id}"
        )
    except InvalidToken:
        allowed = False
    run = await runs.get(run_id) if allowed else None
    if run is None:
        raise NotFoundException("no such run")
    parts = [f"Run #{run.id} ({run.mode.value}) on {run.repository}#{run.issue_number}: "]
    parts[0] += run.state.value
    if run.blocker_reason:
        parts.append(f"Blocked ({run.blocker_category}):\n{run.blocker_reason}")
    if run.summary:
        parts.append(f"Result ({run.outcome}):\n{run.summary}")
    return Response(
        "\n\n".join(parts) + "\n",
        media_type="text/plain; charset=utf-8",
        headers={**NO_REFERRER, "Content-Security-Policy": "default-src 'none'; sandbox"},
    )


routes = [run_stream, run_page, full_plan, full_report, full_summary]
