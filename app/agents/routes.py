"""The agent API (`/api/runs/{id}/brief`, `/events`, `/log`), `GET /agent/reporter.py` (the
reporting script the agent workflow fetches so that it always matches this server) and the run
viewer's routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response, get, post

from app.agents import auth, brief, lifecycle, viewer
from app.agents.events import InvalidEvent, parse_event, parse_log
from app.runtime import Runtime
from app.stream import chunks
from app.web.errors import error

_PACKAGED = Path(__file__).resolve().parent.parent / "_workflows" / "reporter.py"
_SOURCE = Path(__file__).resolve().parent.parent.parent / "workflows" / "reporter.py"
REPORTER = _PACKAGED if _PACKAGED.is_file() else _SOURCE

# Log chunks are small (the reporter sends at most a few KB every few seconds).
MAX_AGENT_BODY = 2 * 1024 * 1024


@get("/api/runs/{run_id:int}/brief")
async def run_brief(request: Request, rt: Runtime, run_id: int) -> dict[str, Any]:
    """The task for this run: mode, issue, approved plan, feedback, error context, cost cap."""
    run = await auth.authorize(request, rt, run_id)
    return await brief.build(rt, run)


@post("/api/runs/{run_id:int}/events", status_code=202, request_max_body_size=MAX_AGENT_BODY)
async def run_event(request: Request, rt: Runtime, run_id: int) -> Response[dict[str, Any]]:
    """One event: started, progress, plan, blocker, pr or completed."""
    run = await auth.authorize(request, rt, run_id)
    try:
        event = parse_event(await request.body())
    except InvalidEvent as exc:
        return error(422, str(exc))
    try:
        run = await lifecycle.apply(rt, run, event)
    except lifecycle.RunFinished as exc:
        return error(409, str(exc))
    return Response({"run": run.id, "state": run.state.value}, status_code=202)


@post("/api/runs/{run_id:int}/log", status_code=200, request_max_body_size=MAX_AGENT_BODY)
async def run_log(request: Request, rt: Runtime, run_id: int) -> Response[dict[str, Any]]:
    """A chunk of terminal output; the same seq twice is stored once."""
    run = await auth.authorize(request, rt, run_id)
    try:
        chunk = parse_log(await request.body())
    except InvalidEvent as exc:
        return error(422, str(exc))
    if run.log_expired_at is not None:
        return error(409, f"run {run.id} ended long ago and its log has expired")
    stored = await chunks.append(run.id, chunk.seq, chunk.data)
    if stored and run.state.active:
        await lifecycle.seen(rt, run)
    return Response({"run": run.id, "seq": chunk.seq, "stored": stored})


@get("/agent/reporter.py", media_type=MediaType.TEXT, include_in_schema=False)
async def reporter_script() -> Response[bytes]:
    return Response(
        REPORTER.read_bytes(),
        media_type="text/x-python; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


routes = [run_brief, run_event, run_log, reporter_script, *viewer.routes]
