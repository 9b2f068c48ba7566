"""Runs asked for and reported on with an API token rather than a comment or an OIDC token: a
harness registering the run it starts itself (`POST /api/runs`, trigger `harness`) and MCP
clients dispatching agents (trigger `mcp`), posting plans and reporting blockers.

Every run goes through `spawn.request_run`, the one way to start a run, with the token's name
(`token:<name>`) as its requester, so the dispatcher's audit entries name the token. The spawn
gates are decided at once, in the request (`dispatcher.decide`): the caller hears a refusal — the
gate's reason and when it clears — instead of finding a comment later. `implement` needs an
approved plan exactly as `/dispatch implement` does.

A harness run is not sent to GitHub Actions (see `app/agents/dispatcher.py`): its gates pass and
take the budget like any run's, it becomes `dispatched` without a workflow, and then lives like
every run — the brief, events, log chunks, status comment, stream, watchdog and cost accounting —
with the harness reporting under its agent token.
"""

from __future__ import annotations

from datetime import datetime

from litestar.exceptions import HTTPException, NotFoundException

from app.agents import dispatcher, lifecycle, plans, qa, runs, spawn, spawn_decisions
from app.agents.events import AgentEvent, Blocker, BlockerCategory, Completed, PlanProposed
from app.agents.runs import NewRun, Run, RunState, Trigger
from app.audit import log as audit
from app.claims import holding as claim_holding
from app.claims import records as claims
from app.issues import cache, repo_config
from app.issues.labels import AGENT_NAME, AGENT_NAME_RULE
from app.modes import COMMAND_MODES, Mode
from app.runtime import Runtime
from app.tokens import service as tokens
from app.tokens.guard import require_repository, require_scope
from app.tokens.service import ApiToken
from app.web.errors import conflict, github_trouble, invalid

BLOCKER_CATEGORIES = (
    "missing_env",
    "unclear_requirement",
    "missing_dependency",
    "test_failure",
    "design_decision",
    "out_of_scope",
)


class RunRefused(HTTPException):
    """The spawn gates (or one active run per issue) said no: 429, with the gate and when it
    clears (also as `Retry-After`)."""

    status_code = 429

    def __init__(self, reason: str, gate: str, clears_at: datetime | None, now: datetime) -> None:
        detail = reason
        headers = {}
        if clears_at is not None:
            detail += f"; it clears at {clears_at:%Y-%m-%d %H:%M} UTC"
            headers["Retry-After"] = str(max(int((clears_at - now).total_seconds()), 1))
        super().__init__(
            detail=detail,
            status_code=429,
            headers=headers,
            extra={"gate": gate, "clears_at": clears_at.isoformat() if clears_at else None},
        )
        self.reason = reason
        self.gate = gate
        self.clears_at = clears_at


def parse_mode(value: str) -> Mode:
    names = ", ".join(mode.value for mode in COMMAND_MODES)
    try:
        mode = Mode(value)
    except ValueError:
        raise invalid("mode", f"`mode` must be one of {names}") from None
    if mode not in COMMAND_MODES:
        raise invalid("mode", f"`mode` must be one of {names}")
    if mode is Mode.REVISE:
        # A revision needs its pull request's checks and review feedback (`follow_ups.start`):
        # it starts from `/dispatch revise` or a review, and a harness claims the pull request
        # as a `pr_follow_up` item instead of registering a run of it.
        raise invalid(
            "mode",
            "a harness cannot register a revise run: claim the pull request with "
            '`POST /api/claims {"kinds": ["pr_follow_up"]}` and push to its branch, or comment '
            "`/dispatch revise` on it",
        )
    return mode


async def start(
    rt: Runtime,
    token: ApiToken,
    *,
    repository: str,
    number: int,
    mode: Mode,
    trigger: Trigger,
    agent: str = "claude",
    notes: str | None = None,
    claim_id: int | None = None,
) -> Run:
    """Create the run and decide its gates now. A harness registering its own run needs the
    `agent` scope; dispatching an agent to GitHub Actions needs `dispatch`."""
    with github_trouble("starting the run"):
        return await _start(
            rt,
            token,
            repository=repository,
            number=number,
            mode=mode,
            trigger=trigger,
            agent=agent,
            notes=notes,
            claim_id=claim_id,
        )


async def _start(
    rt: Runtime,
    token: ApiToken,
    *,
    repository: str,
    number: int,
    mode: Mode,
    trigger: Trigger,
    agent: str = "claude",
    notes: str | None = None,
    claim_id: int | None = None,
) -> Run:
    require_scope(token, tokens.AGENT if trigger is Trigger.HARNESS else tokens.DISPATCH)
    require_repository(token, repository)
    if not AGENT_NAME.match(agent or ""):
        raise invalid("agent", f"`agent` must be a name made of {AGENT_NAME_RULE}")
    issue = await cache.get(repository, number)
    if issue is None:
        raise NotFoundException(
            f"{repository}#{number} is not an issue Dispatch knows (is the App installed there?)"
        )
    claim = None
    if claim_id is not None:
        claim = await claim_holding.held(claim_id, token)
        if (claim.repository_id, claim.issue_number) != (issue.repository_id, number):
            raise invalid(
                "claim",
                f"claim {claim.id} holds {claim.repository}#{claim.issue_number}, "
                f"not {repository}#{number}",
            )
    plan_id = None
    target_pull = None
    if mode is Mode.IMPLEMENT or mode.spec.checks_pull:
        loaded = await repo_config.load(rt, issue.installation_id, issue.repository)
        if mode is Mode.IMPLEMENT:
            try:
                plan_id = await plans.for_implementation(
                    issue.repository_id,
                    number,
                    require_approval=loaded.config.plans.require_approval,
                )
            except plans.PlanRequired as exc:
                raise conflict(str(exc)) from None
        else:  # the pull request that closes the issue (or its implementation's), as `/dispatch qa`
            found = await qa.target_for(
                rt.github.installation(issue.installation_id),
                repository=issue.repository,
                repository_id=issue.repository_id,
                number=number,
                is_pull=False,
                allow_forks=loaded.config.qa.allow_forks,
            )
            if isinstance(found, qa.Refused):
                raise conflict(found.reason)
            target_pull = found
    requested = await spawn.request_run(
        NewRun(
            installation_id=issue.installation_id,
            repository=issue.repository,
            repository_id=issue.repository_id,
            issue_number=number,
            mode=mode,
            trigger=trigger,
            requested_by=token.actor,
            notes=(notes or "").strip() or None,
            plan_id=plan_id,
            agent=agent,
            target_pull=target_pull,
        )
    )
    now = rt.clock.now()
    if isinstance(requested, spawn.Refusal):
        await audit.record(
            actor=token.actor,
            action="run.refuse",
            repository=issue.repository,
            issue_number=number,
            installation_id=issue.installation_id,
            after={"mode": mode.value, "gate": "one_active_run", "trigger": trigger.value},
            outcome=audit.Outcome.REFUSED,
            reason=requested.reason,
        )
        raise RunRefused(requested.reason, "one_active_run", None, now)
    run = await dispatcher.decide(requested.id, rt)
    if run.state is RunState.REFUSED:
        decision = await spawn_decisions.last_decision(run.id)
        if decision is None:
            raise RunRefused(run.refusal or "refused", "unknown", None, now)
        raise RunRefused(decision.reason, decision.gate, decision.clears_at, now)
    if claim is not None:
        await claims.attach_run(claim.id, run.id)
    return run


async def reportable(token: ApiToken, run_id: int) -> Run:
    """A run this token may report on (the `agent` scope, on the run's repository)."""
    require_scope(token, tokens.AGENT)
    run = await runs.get(run_id)
    if run is None:
        raise NotFoundException(f"no run {run_id}")
    require_repository(token, run.repository)
    return run


async def _apply(rt: Runtime, run: Run, event: AgentEvent) -> Run:
    try:
        return await lifecycle.apply(rt, run, event)
    except lifecycle.RunFinished as exc:
        raise conflict(str(exc)) from None


async def post_plan(
    rt: Runtime,
    token: ApiToken,
    body: str,
    *,
    run_id: int | None = None,
    claim_id: int | None = None,
) -> Run:
    """A plan for review, from a run (the run goes on) or from a claim's holder. A claim's plan
    is carried by the claim's active run, or else by a harness investigation registered for it
    here (the gates apply), which the plan completes, as a plan completes an investigation."""
    body = (body or "").strip()
    if not body:
        raise invalid("body", "the plan's `body` is empty")
    if run_id is not None:
        run = await reportable(token, run_id)
        return await _apply(rt, run, PlanProposed(body=body))
    if claim_id is None:
        raise invalid("run_id", "give the `run_id` the plan comes from, or your `claim_id`")
    claim = await claim_holding.held(claim_id, token)
    current = await _claim_run(claim)
    if current is not None:
        return await _apply(rt, current, PlanProposed(body=body))
    run = await start(
        rt,
        token,
        repository=claim.repository,
        number=claim.issue_number,
        mode=Mode.INVESTIGATE,
        trigger=Trigger.HARNESS,
        agent=claim.agent,
        claim_id=claim.id,
    )
    run = await _apply(rt, run, PlanProposed(body=body))
    return await _apply(
        rt,
        run,
        Completed(
            outcome="investigation_complete",
            summary=f"`{claim.agent}` posted its plan while holding claim #{claim.id}.",
            cost_usd=0.0,
            turns=0,
        ),
    )


async def _claim_run(claim: claims.Claim) -> Run | None:
    if claim.run_id is None:
        return None
    run = await runs.get(claim.run_id)
    return run if run is not None and run.state.active else None


async def report_blocker(
    rt: Runtime,
    token: ApiToken,
    reason: str,
    category: str,
    *,
    run_id: int | None = None,
    claim_id: int | None = None,
) -> tuple[Run | None, claims.Claim | None]:
    """The agent is stuck and a person must act. On a run: the blocker is recorded and the run
    ends `blocked` (`dispatch/blocked`, the reason in its status comment). On a claim: its active
    run (if any) ends the same way and the claim is released `blocked` (the reason as a comment)."""
    reason = (reason or "").strip()
    if not reason:
        raise invalid("reason", "a blocker needs a `reason`: what a person must do")
    if category not in BLOCKER_CATEGORIES:
        raise invalid("category", f"`category` must be one of {', '.join(BLOCKER_CATEGORIES)}")
    kind: BlockerCategory = category  # type: ignore[assignment]
    if run_id is None and claim_id is None:
        raise invalid("run_id", "give the `run_id` that is blocked, or your `claim_id`")
    claim = await claim_holding.held(claim_id, token) if claim_id is not None else None
    run = await reportable(token, run_id) if run_id is not None else None
    if run is None and claim is not None:
        run = await _claim_run(claim)
    if run is not None and run.state.active:
        run = await _apply(rt, run, Blocker(reason=reason, category=kind))
        run = await _apply(
            rt, run, Completed(outcome="blocked", summary=reason, cost_usd=0.0, turns=0)
        )
    ended = None
    if claim is not None:
        ended = await claim_holding.release(
            rt, token, claim.id, "blocked", reason=f"{category}: {reason}"
        )
    return run, ended
