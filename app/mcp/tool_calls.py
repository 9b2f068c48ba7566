"""What every MCP tool shares: who is calling (the API token and the app's runtime, from the
request), the types of the arguments tools have in common and their annotations, refusals as tool
errors that say why, and the audit of every call that changes something (`mcp.<tool>`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from githubkit.exception import GitHubException
from litestar.exceptions import HTTPException
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from app.audit import log as audit
from app.issues import cache
from app.runtime import Runtime
from app.tokens.service import ApiToken

# Where the authenticated API token travels from the HTTP layer (`app/mcp/mount.py`) to a tool:
# a key of the ASGI scope of the request that carried the call.
TOKEN_SCOPE_KEY = "dispatch.api_token"  # noqa: S105 (a dictionary key, not a secret)
# And the app's runtime, the same way.
RUNTIME_SCOPE_KEY = "dispatch.runtime"

Repository = Annotated[str, Field(description="The repository, as owner/name.")]
IssueNumber = Annotated[int, Field(ge=1, description="The issue's number in the repository.")]
RunId = Annotated[int, Field(ge=1, description="The run's id (from a dispatch tool or get_issue).")]
ClaimId = Annotated[int, Field(ge=1, description="The claim's id, from claim_next_issue.")]
StatusName = Literal["backlog", "ready", "in-progress", "in-review", "verifying", "done"]
PriorityName = Literal["p0", "p1", "p2", "p3"]
KindName = Literal["bug", "feature", "chore", "research", "security"]

ToolFunction = Callable[..., Any]
# What `build_server` hands each group of tools: `tool(annotations)` decorates a tool.
ToolRegistrar = Callable[[ToolAnnotations], Callable[[ToolFunction], ToolFunction]]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
CHANGES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def token_of(ctx: Context) -> ApiToken:
    request = ctx.request_context.request
    token = request.scope.get(TOKEN_SCOPE_KEY) if request is not None else None
    if not isinstance(token, ApiToken):
        raise ToolError("no Dispatch API token came with this call")
    return token


def runtime_of(ctx: Context) -> Runtime:
    request = ctx.request_context.request
    rt = request.scope.get(RUNTIME_SCOPE_KEY) if request is not None else None
    if not isinstance(rt, Runtime):
        raise ToolError("this call did not come through Dispatch's /mcp endpoint")
    return rt


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """A refusal of the shared services (an HTTP error type), or GitHub failing, as a tool error
    saying why."""
    try:
        yield
    except HTTPException as exc:
        raise ToolError(explain(exc)) from None
    except GitHubException as exc:
        raise ToolError(f"GitHub failed ({type(exc).__name__}); retry in a moment") from None


def explain(exc: HTTPException) -> str:
    kind = {
        401: "not authenticated",
        403: "not allowed",
        404: "not found",
        409: "refused",
        422: "invalid argument",
        429: "refused by the spawn gates",
        502: "GitHub failed",
    }.get(exc.status_code, f"error {exc.status_code}")
    text = f"{kind}: {exc.detail}"
    if isinstance(exc.extra, dict) and exc.extra.get("field"):
        text += f" (argument `{exc.extra['field']}`)"
    return text


async def audited(ctx: Context, tool: str, target: str | None, work: Any) -> Any:
    """Run a changing tool's work and audit the call with the token's name (refused ones too)."""
    token = token_of(ctx)
    repository, _, number = (target or "").partition("#")
    try:
        with refusals():
            result = await work
    except ToolError as exc:
        await audit.record(
            actor=token.actor,
            action=f"mcp.{tool}",
            target=target or tool,
            repository=repository or None,
            issue_number=int(number) if number.isdigit() else None,
            outcome=audit.Outcome.REFUSED,
            reason=str(exc),
        )
        raise
    await audit.record(
        actor=token.actor,
        action=f"mcp.{tool}",
        target=target or tool,
        repository=repository or None,
        issue_number=int(number) if number.isdigit() else None,
    )
    return result


def brief_issue(issue: cache.CachedIssue) -> dict[str, Any]:
    return {
        "repository": issue.repository,
        "number": issue.number,
        "title": issue.title,
        "state": issue.state,
        "status": issue.status,
        "priority": issue.priority,
        "labels": issue.labels,
        "agents": issue.agents,
    }
