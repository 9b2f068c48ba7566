"""The MCP tools: each a thin call of the service the HTTP API or the `/dispatch` verb uses, with
the same permission (the token's scope and repositories), the same spawn gates and the same
audit. A refusal is a tool error whose text says why and what to do — never a protocol error and
never a silent success — and every call of a tool that changes something is audited with the
token's name (`mcp.<tool>`), refusals included.

Scopes: `read` lists and reads; `agent` also claims, comments and reports (plans, blockers);
`dispatch` also creates and edits issues and dispatches agents.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from githubkit.exception import GitHubException
from litestar.exceptions import HTTPException
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from app import __version__
from app.agents import api_runs, follow_ups, reads
from app.agents.runs import Trigger
from app.audit import log as audit
from app.claims import routes as claim_routes
from app.claims import service as claims
from app.installations import service as installations
from app.issues import cache, editing
from app.modes import Mode
from app.orchestrator import asking
from app.orchestrator.missions import Source
from app.runtime import Runtime
from app.search import duplicates
from app.search import query as search
from app.tokens import service as tokens
from app.tokens.guard import require_repository, require_scope
from app.tokens.service import ApiToken

# Where the authenticated API token travels from the HTTP layer (`app/mcp/mount.py`) to a tool:
# a key of the ASGI scope of the request that carried the call.
TOKEN_SCOPE_KEY = "dispatch.api_token"  # noqa: S105 (a dictionary key, not a secret)
# And the app's runtime, the same way.
RUNTIME_SCOPE_KEY = "dispatch.runtime"

INSTRUCTIONS = """\
Dispatch runs AI agents on GitHub issues. Issue state lives in labels: status/backlog,
status/ready (claimable and dispatchable), status/in-progress, status/in-review, status/done;
priority/p0 (most urgent) to priority/p3; type/bug, feature, chore, research, security.

Work a queue: claim_next_issue gives you the most urgent ready issue and a lease; call
heartbeat_claim well before the lease ends; post_plan or report_blocker with your claim_id; end
with release_claim (done, blocked or abandoned). Or dispatch Dispatch's own agents:
dispatch_investigation ends in a plan a person approves; dispatch_implementation needs that
approved plan. Runs are subject to daily budgets; a refusal says which one and when it clears.
Repositories are named owner/name."""

Repository = Annotated[str, Field(description="The repository, as owner/name.")]
IssueNumber = Annotated[int, Field(ge=1, description="The issue's number in the repository.")]
RunId = Annotated[int, Field(ge=1, description="The run's id (from a dispatch tool or get_issue).")]
ClaimId = Annotated[int, Field(ge=1, description="The claim's id, from claim_next_issue.")]
StatusName = Literal["backlog", "ready", "in-progress", "in-review", "verifying", "done"]
PriorityName = Literal["p0", "p1", "p2", "p3"]
KindName = Literal["bug", "feature", "chore", "research", "security"]

ToolFunction = Callable[..., Any]
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


async def _audited(ctx: Context, tool: str, target: str | None, work: Any) -> Any:
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


@functools.lru_cache(maxsize=2)
def build_server(dispatch_url: str) -> MCPServer:
    """The MCP server with every tool, built once per process (each tool's schema is a pydantic
    model: about 50 ms for all of them). A tool finds the runtime and the caller's token in the
    request (`runtime_of`, `token_of`); each app makes its own transport and session manager
    from it (`mount.build`)."""
    server = MCPServer(
        "dispatch",
        title="Dispatch",
        instructions=INSTRUCTIONS,
        version=__version__,
        website_url=dispatch_url,
    )

    def tool(annotations: ToolAnnotations) -> Callable[[ToolFunction], ToolFunction]:
        """Register a tool; its description is its docstring on one line."""

        def register(fn: ToolFunction) -> ToolFunction:
            text = " ".join(inspect.cleandoc(fn.__doc__ or "").split())
            server.add_tool(fn, description=text, annotations=annotations)
            return fn

        return register

    # --- reading: any token

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
            "issues": [_brief_issue(f.issue) | {"score": round(f.score, 3)} for f in found.found],
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
        return {"total": total, "page": page, "issues": [_brief_issue(i) for i in found]}

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

    # --- issues: `dispatch` to create and edit, `agent` to comment

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
            return {**_brief_issue(issue), "url": url}

        return await _audited(ctx, "create_issue", repository, work())

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
            return _brief_issue(issue)

        return await _audited(ctx, "update_issue", f"{repository}#{number}", work())

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

        return await _audited(ctx, "comment_on_issue", f"{repository}#{number}", work())

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

        return await _audited(ctx, tool, f"{repository}#{number}", work())

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

        return await _audited(ctx, "plan_mission", repository, work())

    # --- working a claim, reporting: `agent` scope

    @tool(CHANGES)
    async def claim_next_issue(
        ctx: Context,
        agent: Annotated[
            str,
            Field(
                description="Your agent's name; the issue gets the label agent/<name>.",
                pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,43}$",
            ),
        ],
        repositories: Annotated[
            list[str] | None, Field(description="Only these repositories (owner/name).")
        ] = None,
        types: list[KindName] | None = None,
        kinds: Annotated[
            list[Literal["issue", "pr_follow_up"]] | None,
            Field(
                description="What you take, in order of preference: `issue` (a ready issue, "
                "the default) and `pr_follow_up` (a pull request whose reviewers requested "
                "changes: push new commits to its head branch, never force-push)."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Claim the most urgent, oldest ready issue nobody works on (or, with kinds, a pull
        request whose change requests wait). Returns the claim (keep its id; renew it with
        heartbeat_claim before lease_expires_at) and the issue (or the pull request and its
        review feedback: untrusted text, only from people with write permission), or
        `claim: null` when nothing waits."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            claimed = await claims.claim_next(
                rt,
                token_of(ctx),
                agent,
                repositories=repositories,
                types=list(types or []) or None,
                kinds=list(kinds) if kinds else None,
                follow_ups=follow_ups.SOURCE,
            )
            if claimed is None:
                return {"claim": None, "issue": None, "message": "nothing is ready to claim"}
            return claim_routes.claim_body(claimed)

        return await _audited(ctx, "claim_next_issue", None, work())

    @tool(CHANGES)
    async def heartbeat_claim(ctx: Context, claim_id: ClaimId) -> dict[str, Any]:
        """Renew your claim's lease (it lasts CLAIM_LEASE_MINUTES, 30 by default, from now)."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            claim = await claims.heartbeat(rt, token_of(ctx), claim_id)
            return {"claim": claim.as_json()}

        return await _audited(ctx, "heartbeat_claim", None, work())

    @tool(CHANGES)
    async def release_claim(
        ctx: Context,
        claim_id: ClaimId,
        outcome: Annotated[
            Literal["done", "blocked", "abandoned"],
            Field(
                description="done: finished (status/in-review with pr_url, else status/done); "
                "blocked: a person must act (needs reason); abandoned: back to the queue."
            ),
        ],
        reason: str | None = None,
        pr_url: Annotated[
            str | None, Field(description="The pull request, https://github.com/…")
        ] = None,
    ) -> dict[str, Any]:
        """End your claim and move the issue as the outcome says; your agent label is removed."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            claim = await claims.release(
                rt, token_of(ctx), claim_id, outcome, reason=reason, pr_url=pr_url
            )
            return {"claim": claim.as_json()}

        return await _audited(ctx, "release_claim", None, work())

    @tool(CHANGES)
    async def post_plan(
        ctx: Context,
        body: Annotated[
            str,
            Field(
                min_length=1,
                description="The plan in Markdown: Summary, Files, Risks, Stop conditions, "
                "Test strategy.",
            ),
        ],
        run_id: Annotated[int | None, Field(description="The run the plan comes from.")] = None,
        claim_id: Annotated[int | None, Field(description="Or the claim you hold.")] = None,
    ) -> dict[str, Any]:
        """Post a plan for a person to review (`/dispatch approve`), from a run or from the
        issue you claimed (a claim's plan is recorded as a harness investigation, under the
        spawn gates)."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            run = await api_runs.post_plan(
                rt, token_of(ctx), body, run_id=run_id, claim_id=claim_id
            )
            return {"run": reads.run_json(rt, run), "message": "the plan is posted for review"}

        return await _audited(ctx, "post_plan", None, work())

    @tool(CHANGES)
    async def report_blocker(
        ctx: Context,
        reason: Annotated[str, Field(min_length=1, description="What a person must do.")],
        category: Literal[
            "missing_env",
            "unclear_requirement",
            "missing_dependency",
            "test_failure",
            "design_decision",
            "out_of_scope",
        ],
        run_id: Annotated[int | None, Field(description="The blocked run.")] = None,
        claim_id: Annotated[int | None, Field(description="Or the claim you hold.")] = None,
    ) -> dict[str, Any]:
        """Say you are stuck and a person must act: the run ends `blocked`, a claim is released
        `blocked`, and the issue gets `dispatch/blocked` with your reason."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            run, claim = await api_runs.report_blocker(
                rt, token_of(ctx), reason, category, run_id=run_id, claim_id=claim_id
            )
            return {
                "run": reads.run_json(rt, run) if run else None,
                "claim": claim.as_json() if claim else None,
            }

        return await _audited(ctx, "report_blocker", None, work())

    return server


def _brief_issue(issue: cache.CachedIssue) -> dict[str, Any]:
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
