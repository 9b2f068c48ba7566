"""The agent API (`/api/runs/{id}/brief`, `/events`, `/log`, `/stream-token`), the agent
workflow's files (`GET /agent/reporter.py`, the reporting script each job of the workflow fetches
and checks against the SHA-256 the workflow pins, and `GET /agent/dispatch-agent.yml`, the
workflow that pins this server's reporter), and the run viewer's routes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import ServiceUnavailableException

from app.agents import auth, brief, lifecycle, stream_tokens, viewer, workflow_files
from app.agents.events import InvalidEvent, PullRequestOpened, parse_event, parse_log
from app.agents.runs import Run
from app.github import addresses
from app.github import retry as github_retry
from app.runtime import Runtime
from app.stream import chunks
from app.web.errors import error

REPORTER = workflow_files.REPORTER
WORKFLOW = workflow_files.WORKFLOW

# Log chunks are small (the reporter sends at most a few KB every few seconds).
MAX_AGENT_BODY = 2 * 1024 * 1024


async def _reporter(request: Request, rt: Runtime, run_id: int) -> tuple[auth.Reporter, bool]:
    """Who reports (the run and its attempt), and whether with the run's stream token."""
    token = stream_tokens.presented(request)
    if token is not None:
        return await stream_tokens.authorize(rt, run_id, token), True
    return await auth.authorize(request, rt, run_id), False


@get("/api/runs/{run_id:int}/brief")
async def run_brief(request: Request, rt: Runtime, run_id: int) -> Response[dict[str, Any]]:
    """The task for this run: mode, issue, approved plan, feedback, error context, cost cap,
    and the prompt made from them."""
    if stream_tokens.presented(request) is not None:
        return error(403, stream_tokens.SCOPE)
    run = (await auth.authorize(request, rt, run_id)).run
    if run.state.finished:
        return error(409, f"run #{run.id} is already {run.state.value}; its brief is closed")
    return Response(await brief.build(rt, run), headers={"Cache-Control": "no-store"})


@post("/api/runs/{run_id:int}/stream-token", status_code=201)
async def run_stream_token(request: Request, rt: Runtime, run_id: int) -> Response[dict[str, Any]]:
    """A token for the run's agent job to stream with (it has no OIDC token of its own)."""
    if stream_tokens.presented(request) is not None:
        return error(403, stream_tokens.SCOPE)
    reporter = await auth.authorize(request, rt, run_id)
    if not reporter.oidc:
        return error(
            403, "stream tokens are issued to the run's GitHub Actions job: send its OIDC token"
        )
    run, attempt = reporter.run, reporter.attempt
    try:
        token, expires_at = await stream_tokens.issue(rt, run, attempt)
    except stream_tokens.StreamTokenRefused as exc:
        return error(409, str(exc))
    body = {"run": run.id, "run_attempt": attempt, "token": token, "expires_at": expires_at}
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})


@post("/api/runs/{run_id:int}/events", status_code=202, request_max_body_size=MAX_AGENT_BODY)
async def run_event(request: Request, rt: Runtime, run_id: int) -> Response[dict[str, Any]]:
    """One event: started, progress, plan, blocker, pr or completed, from the run's latest
    workflow run attempt."""
    reporter, streaming = await _reporter(request, rt, run_id)
    run = reporter.run
    try:
        event = parse_event(await request.body())
    except InvalidEvent as exc:
        return error(422, str(exc))
    if streaming and not stream_tokens.allows(event):
        return error(403, stream_tokens.SCOPE)
    if isinstance(event, PullRequestOpened) and not _is_pull_address(rt, run, event):
        # The address goes into the status comment as a link: only the pull request's own.
        return error(
            422,
            f"`url` must be the address of pull request #{event.number} of {run.repository} "
            "on GitHub",
        )
    if isinstance(event, PullRequestOpened):
        url = await _runs_pull_url(rt, run, event.number)
        if url is None:
            return error(
                422,
                f"pull request #{event.number} is not from this run's branch "
                f"(dispatch/run-{run.id}-…) in {run.repository}, as GitHub sees it",
            )
        # GitHub's address of the pull request, never the one reported.
        event = msgspec.structs.replace(event, url=url)
    try:
        run = await lifecycle.apply(rt, run, event, attempt=reporter.attempt)
    except lifecycle.RunFinished as exc:
        return error(409, str(exc))
    return Response({"run": run.id, "state": run.state.value}, status_code=202)


def _is_pull_address(rt: Runtime, run: Run, event: PullRequestOpened) -> bool:
    web = rt.settings.github_web_url.rstrip("/")
    expected = f"{web}/{run.repository}/pull/{event.number}".lower()
    safe = addresses.safe_link(event.url, addresses.github_hosts(web))
    return safe == event.url and safe.lower() == expected


async def _runs_pull_url(rt: Runtime, run: Run, number: int) -> str | None:
    try:
        return await lifecycle.runs_pull_url(rt, run, number)
    except Exception as exc:
        if not github_retry.unavailable(exc):
            raise
        raise ServiceUnavailableException(
            f"GitHub did not say whether pull request #{number} is this run's; send it again",
            headers={"Retry-After": "10"},
        ) from None


@post("/api/runs/{run_id:int}/log", status_code=200, request_max_body_size=MAX_AGENT_BODY)
async def run_log(request: Request, rt: Runtime, run_id: int) -> Response[dict[str, Any]]:
    """A chunk of terminal output of the reporting attempt; the same seq twice is stored once."""
    reporter, _ = await _reporter(request, rt, run_id)
    run = reporter.run
    if run.log_expired_at is not None:
        return error(409, f"run {run.id} ended long ago and its log has expired")
    if run.state.finished:
        return error(409, f"run #{run.id} is already {run.state.value}; its log is closed")
    try:
        chunk = parse_log(await request.body())
    except InvalidEvent as exc:
        return error(422, str(exc))
    stored = await chunks.append(run.id, chunk.seq, chunk.data, attempt=reporter.attempt)
    if stored and run.state.active:
        await lifecycle.seen(rt, run)
    return Response(
        {"run": run.id, "attempt": reporter.attempt, "seq": chunk.seq, "stored": stored}
    )


def _agent_file(path: Path, media_type: str) -> Response[bytes]:
    content = path.read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    return Response(
        content,
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "ETag": f'"sha256-{sha256}"'},
    )


@get("/agent/reporter.py", media_type=MediaType.TEXT, include_in_schema=False)
async def reporter_script() -> Response[bytes]:
    return _agent_file(REPORTER, "text/x-python; charset=utf-8")


@get("/agent/dispatch-agent.yml", media_type=MediaType.TEXT, include_in_schema=False)
async def agent_workflow() -> Response[bytes]:
    """The agent workflow matching this server (it pins this server's reporter by hash)."""
    return _agent_file(WORKFLOW, "text/yaml; charset=utf-8")


routes = [
    run_brief,
    run_stream_token,
    run_event,
    run_log,
    reporter_script,
    agent_workflow,
    *viewer.routes,
]
