"""The MCP tools that only read (any token): search and list issues, read an issue, a run and its
log, and the fleet's state against its budgets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from app.agents import reads
from app.issues import cache
from app.mcp.tool_calls import (
    READ_ONLY,
    IssueNumber,
    KindName,
    PriorityName,
    Repository,
    RunId,
    StatusName,
    ToolRegistrar,
    brief_issue,
    refusals,
    runtime_of,
    token_of,
)
from app.search import query as search
from app.tokens import service as tokens
from app.tokens.guard import require_repository, require_scope


def register_reading(tool: ToolRegistrar) -> None:
    """The reading tools: any token."""

    @tool(READ_ONLY)
    async def search_issues(
        ctx: Context,
        query: Annotated[str, Field(min_length=1, description="What to look for, in plain words.")],
        repository: Annotated[
            str | None, Field(description="Only this repository (owner/name).")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=search.MAX_RESULTS)] = 10,
    ) -> dict[str, Any]:
        """Find issues by meaning (semantic search over their embeddings; by words when
        embeddings are off), best match first. Use it before creating an issue, to find
        duplicates."""
        rt = runtime_of(ctx)
        with refusals():
            found = await search.search(
                rt, token_of(ctx), query, repository=repository, limit=limit
            )
        return {
            "method": found.method,
            "issues": [brief_issue(f.issue) | {"score": round(f.score, 3)} for f in found.found],
        }

    @tool(READ_ONLY)
    async def list_issues(
        ctx: Context,
        repository: Annotated[
            str | None, Field(description="owner/name; all when omitted.")
        ] = None,
        status: StatusName | None = None,
        priority: PriorityName | None = None,
        type: KindName | None = None,
        agent: Annotated[str | None, Field(description="Issues labelled agent/<agent>.")] = None,
        state: Literal["open", "closed", "all"] = "open",
        limit: Annotated[int, Field(ge=1, le=100)] = 30,
        page: Annotated[int, Field(ge=1)] = 1,
    ) -> dict[str, Any]:
        """List issues, most urgent and oldest first, filtered by labels."""
        token = token_of(ctx)
        with refusals():
            require_scope(token, tokens.READ)
            if repository is not None:
                require_repository(token, repository)
            total, found = await cache.search(
                cache.IssueFilter(
                    repositories=[repository] if repository else (token.repositories or None),
                    state=None if state == "all" else state,
                    status=status,
                    priority=priority,
                    agent=agent,
                    type=type,
                ),
                limit=limit,
                offset=(page - 1) * limit,
            )
        return {"total": total, "page": page, "issues": [brief_issue(i) for i in found]}

    @tool(READ_ONLY)
    async def get_issue(
        ctx: Context, repository: Repository, number: IssueNumber
    ) -> dict[str, Any]:
        """One issue: title, body, labels and state, its recent runs, its plan's state and who
        holds its claim."""
        rt = runtime_of(ctx)
        with refusals():
            return await reads.issue(rt, token_of(ctx), repository, number)

    @tool(READ_ONLY)
    async def get_run(ctx: Context, run_id: RunId) -> dict[str, Any]:
        """One run: mode, state, cost, outcome, summary, and the events its agent reported."""
        rt = runtime_of(ctx)
        with refusals():
            return await reads.run(rt, token_of(ctx), run_id)

    @tool(READ_ONLY)
    async def read_run_log(
        ctx: Context,
        run_id: RunId,
        after: Annotated[
            int, Field(ge=0, description="Return chunks after this sequence number.")
        ] = 0,
        attempt: Annotated[
            int,
            Field(ge=1, description="The workflow run attempt `after` counts in (re-runs: 2, …)."),
        ] = 1,
        limit: Annotated[int, Field(ge=1, le=reads.MAX_LOG_CHUNKS)] = 200,
    ) -> dict[str, Any]:
        """A run's terminal output in order, attempt by attempt; call again with `next_after`
        and `next_attempt` to read on."""
        with refusals():
            return await reads.log(token_of(ctx), run_id, after=after, attempt=attempt, limit=limit)

    @tool(READ_ONLY)
    async def fleet_status(ctx: Context) -> dict[str, Any]:
        """Active runs, spawns and spend today per installation and mode against their budgets,
        active claims, and whether the kill switch is on."""
        rt = runtime_of(ctx)
        with refusals():
            return await reads.fleet(rt, token_of(ctx))
