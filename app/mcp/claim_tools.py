"""The MCP tools that work a claim and report (`agent` scope): claim the next issue, renew and
release the claim, post a plan, report a blocker."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from app.agents import api_runs, follow_up_queue, reads
from app.claims import holding as claim_holding
from app.claims import routes as claim_routes
from app.claims import taking as claim_taking
from app.mcp.tool_calls import (
    CHANGES,
    ClaimId,
    KindName,
    ToolRegistrar,
    audited,
    runtime_of,
    token_of,
)


def register_claims(tool: ToolRegistrar) -> None:
    """The tools that work a claim and report: `agent` scope."""

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
            claimed = await claim_taking.claim_next(
                rt,
                token_of(ctx),
                agent,
                repositories=repositories,
                types=list(types or []) or None,
                kinds=list(kinds) if kinds else None,
                follow_ups=follow_up_queue.SOURCE,
            )
            if claimed is None:
                return {"claim": None, "issue": None, "message": "nothing is ready to claim"}
            return claim_routes.claim_body(claimed)

        return await audited(ctx, "claim_next_issue", None, work())

    @tool(CHANGES)
    async def heartbeat_claim(ctx: Context, claim_id: ClaimId) -> dict[str, Any]:
        """Renew your claim's lease (it lasts CLAIM_LEASE_MINUTES, 30 by default, from now)."""
        rt = runtime_of(ctx)

        async def work() -> dict[str, Any]:
            claim = await claim_holding.heartbeat(rt, token_of(ctx), claim_id)
            return {"claim": claim.as_json()}

        return await audited(ctx, "heartbeat_claim", None, work())

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
            claim = await claim_holding.release(
                rt, token_of(ctx), claim_id, outcome, reason=reason, pr_url=pr_url
            )
            return {"claim": claim.as_json()}

        return await audited(ctx, "release_claim", None, work())

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

        return await audited(ctx, "post_plan", None, work())

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

        return await audited(ctx, "report_blocker", None, work())
