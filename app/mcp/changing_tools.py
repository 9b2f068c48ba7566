"""The MCP tools that change issues and start work: create and edit issues (`dispatch` scope),
comment on them (`agent`), dispatch Dispatch's agents under the spawn gates and plan a mission
(`dispatch`)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from app.agents import api_runs, reads
from app.agents.runs import Trigger
from app.installations import service as installations
from app.issues import editing
from app.mcp.tool_calls import (
    CHANGES,
    IssueNumber,
    KindName,
    PriorityName,
    Repository,
    StatusName,
    ToolRegistrar,
    audited,
    brief_issue,
    runtime_of,
    token_of,
)
from app.modes import Mode
from app.orchestrator import asking
from app.orchestrator.missions import Source
from app.search import duplicates
from app.tokens import service as tokens
from app.tokens.guard import require_repository, require_scope


def register_changing(tool: ToolRegistrar) -> None:
    """The tools that change issues (`dispatch` to create and edit, `agent` to comment) and
    dispatch Dispatch's agents (`dispatch` scope, the spawn gates)."""

    @tool(CHANGES)
    async def create_issue(
        ctx: Context,
        repository: Repository,
        title: Annotated[str, Field(min_length=1, max_length=editing.MAX_TITLE)],
        body: Annotated[
            str, Field(description="Markdown. @-mentions and outside links are defused.")
        ] = "",
        status: StatusName = "backlog",
        priority: PriorityName | None = None,
        type: KindName | None = None,
    ) -> dict[str, Any]:
        """Open an issue (search_issues first: it may exist). Needs the `dispatch` scope."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            issue, url = await editing.create(
                rt,
                token_of(ctx),
                repository,
                title,
                body,
                status=status,
                priority=priority,
                kind=type,
            )
            return {**brief_issue(issue), "url": url}

        return await audited(ctx, "create_issue", repository, work())

    @tool(CHANGES)
    async def update_issue(
        ctx: Context,
        repository: Repository,
        number: IssueNumber,
        title: str | None = None,
        body: Annotated[str | None, Field(description="Replaces the whole body.")] = None,
        status: StatusName | None = None,
        priority: PriorityName | None = None,
        type: KindName | None = None,
    ) -> dict[str, Any]:
        """Change an issue's title or body, or move its status, priority or type (one label per
        family is kept). Needs the `dispatch` scope."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            issue = await editing.update(
                rt,
                token_of(ctx),
                repository,
                number,
                title=title,
                body=body,
                status=status,
                priority=priority,
                kind=type,
            )
            return brief_issue(issue)

        return await audited(ctx, "update_issue", f"{repository}#{number}", work())

    @tool(CHANGES)
    async def comment_on_issue(
        ctx: Context,
        repository: Repository,
        number: IssueNumber,
        body: Annotated[str, Field(min_length=1, description="Markdown, signed with your token.")],
    ) -> dict[str, Any]:
        """Comment on an issue under Dispatch's name, signed with your token's name."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            posted = await editing.comment(rt, token_of(ctx), repository, number, body)
            return {"comment": posted.get("id"), "url": posted.get("html_url")}

        return await audited(ctx, "comment_on_issue", f"{repository}#{number}", work())

    # --- dispatching Dispatch's agents: `dispatch` scope, the spawn gates

    async def dispatch(
        ctx: Context, tool: str, repository: str, number: int, mode: Mode, notes: str | None
    ) -> dict[str, Any]:
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            token = token_of(ctx)
            run = await api_runs.start(
                rt,
                token,
                repository=repository,
                number=number,
                mode=mode,
                trigger=Trigger.MCP,
                notes=notes,
            )
            answer: dict[str, Any] = {"run": reads.run_json(rt, run)}
            if mode is Mode.INVESTIGATE and (
                warning := await duplicates.warning_for(rt, run.installation_id, repository, number)
            ):
                answer["warning"] = warning
            return answer

        return await audited(ctx, tool, f"{repository}#{number}", work())

    @tool(CHANGES)
    async def dispatch_investigation(
        ctx: Context,
        repository: Repository,
        number: IssueNumber,
        notes: Annotated[str | None, Field(description="What the agent should look at.")] = None,
    ) -> dict[str, Any]:
        """Dispatch an agent (a GitHub Actions run) to investigate the issue; it ends with a
        plan that a person approves. Subject to the spawn gates and daily budgets."""
        return await dispatch(
            ctx, "dispatch_investigation", repository, number, Mode.INVESTIGATE, notes
        )

    @tool(CHANGES)
    async def dispatch_implementation(
        ctx: Context,
        repository: Repository,
        number: IssueNumber,
        notes: str | None = None,
    ) -> dict[str, Any]:
        """Dispatch an agent to implement the issue's approved plan and open a pull request.
        Refused when there is no approved plan (as `/dispatch implement` is)."""
        return await dispatch(
            ctx, "dispatch_implementation", repository, number, Mode.IMPLEMENT, notes
        )

    @tool(CHANGES)
    async def dispatch_qa(
        ctx: Context,
        repository: Repository,
        number: IssueNumber,
        instructions: str | None = None,
    ) -> dict[str, Any]:
        """Dispatch a QA run against the issue's pull request or branch."""
        return await dispatch(ctx, "dispatch_qa", repository, number, Mode.QA, instructions)

    @tool(CHANGES)
    async def dispatch_research(
        ctx: Context,
        repository: Repository,
        number: IssueNumber,
        question: Annotated[str, Field(min_length=1, description="The question to research.")],
    ) -> dict[str, Any]:
        """Dispatch deep research on a question; the answer is posted on the issue."""
        return await dispatch(ctx, "dispatch_research", repository, number, Mode.RESEARCH, question)

    @tool(CHANGES)
    async def plan_mission(
        ctx: Context,
        repository: Repository,
        request: Annotated[
            str,
            Field(
                min_length=1,
                max_length=asking.MAX_REQUEST,
                description="What to build, in plain words; the first line becomes the title.",
            ),
        ],
    ) -> dict[str, Any]:
        """Open a mission issue for what to build and let Claude plan it into issues. Only a
        proposal comes back on the issue: nothing is created or dispatched until a person with
        write permission approves it there (`/dispatch approve`). Needs the `dispatch` scope."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            token = token_of(ctx)
            require_scope(token, tokens.DISPATCH)
            require_repository(token, repository)
            found = await installations.repository_by_name(repository)
            if found is None:
                raise ToolError(f"{repository} is not a repository the App is installed on")
            opened = await asking.open_mission(
                rt,
                installation_id=found["installation_id"],
                repository=found["full_name"],
                repository_id=found["id"],
                request=request,
                requested_by=None,
                source=Source.MCP,
            )
            if isinstance(opened, asking.Refusal):
                raise ToolError(f"no mission: {opened.reason}")
            answer: dict[str, Any] = {"number": opened.number, "url": opened.url}
            if isinstance(opened.mission, asking.Refusal):
                answer["message"] = (
                    f"the issue is open, but planning did not start: {opened.mission.reason}"
                )
            else:
                answer["mission"] = opened.mission.id
                answer["message"] = (
                    "planning started: the proposal appears on the issue for a person to approve"
                )
            return answer

        return await audited(ctx, "plan_mission", repository, work())
