"""What harnesses, MCP clients and operators read, for any API token (the `read` scope) and only
within its repositories: one issue with its runs, plan and claim; runs with their events; a run's
log; and the fleet — active runs, spawns and spend today per installation and mode against their
budgets, and the kill switches. The HTTP routes (`app/agents/read_routes.py`) and the MCP tools
(`app/mcp/`) both answer from here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar.exceptions import NotFoundException, PermissionDeniedException

from app.agents import (
    kill_switches,
    plans,
    run_counts,
    run_events,
    run_search,
    runs,
    spawn_budgets,
    spawn_limits,
)
from app.agents.run_search import RunFilter
from app.agents.runs import Run, RunState
from app.claims import records as claims
from app.installations import service as installations
from app.issues import cache, repo_config
from app.issues.repo_config import RepoConfig
from app.modes import Mode
from app.runtime import Runtime
from app.stream import chunks
from app.stream.links import viewer_url
from app.tokens import service as tokens
from app.tokens.guard import require_repository, require_scope
from app.tokens.service import ApiToken
from app.web.errors import invalid

MAX_LOG_CHUNKS = 1000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_json(rt: Runtime, run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "repository": run.repository,
        "issue": run.issue_number,
        "mode": run.mode.value,
        "state": run.state.value,
        "trigger": run.trigger.value,
        "agent": run.agent,
        "requested_by": run.requested_by,
        "notes": run.notes,
        "plan_id": run.plan_id,
        "refusal": run.refusal,
        "cost_cap_usd": run.cost_cap_usd,
        "cost_usd": run.cost_usd,
        "turns": run.turns,
        "outcome": run.outcome,
        "summary": run.summary,
        "pr_number": run.pr_number,
        "pr_url": run.pr_url,
        "blocker": (
            {"reason": run.blocker_reason, "category": run.blocker_category}
            if run.blocker_reason
            else None
        ),
        "workflow_run_url": run.workflow_run_url,
        "stream_url": viewer_url(rt, run.id, run.viewer_key) if run.viewer_key else None,
        "created_at": _iso(run.created_at),
        "dispatched_at": _iso(run.dispatched_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "last_seen_at": _iso(run.last_seen_at),
    }


def _plan_json(plan: plans.Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "revision": plan.revision,
        "state": plan.state.value,
        "run": plan.run_id,
        "decided_by": plan.decided_by,
        "decided_at": _iso(plan.decided_at),
        "feedback": plan.feedback,
        "body": plan.body,
    }


async def issue(rt: Runtime, token: ApiToken, repository: str, number: int) -> dict[str, Any]:
    """One cached issue: labels and state, its recent runs, its plan's state, its claim."""
    require_scope(token, tokens.READ)
    require_repository(token, repository)
    found = await cache.get(repository, number)
    if found is None:
        raise NotFoundException(f"{repository}#{number} is not an issue Dispatch knows")
    recent = await runs.for_issue(found.repository, number, limit=10)
    plan = await plans.latest(found.repository_id, number)
    claim = await claims.active_on(found.repository_id, number)
    return {
        **found.as_json(),
        "runs": [run_json(rt, run) for run in recent],
        "plan": _plan_json(plan),
        "claim": claim.as_json() if claim else None,
    }


async def _readable_run(token: ApiToken, run_id: int) -> Run:
    require_scope(token, tokens.READ)
    run = await runs.get(run_id)
    # Another repository's run is "not found" for this token, like one that does not exist.
    if run is None or not token.allows(run.repository):
        raise NotFoundException(f"no run {run_id} in this token's repositories")
    return run


async def run(rt: Runtime, token: ApiToken, run_id: int) -> dict[str, Any]:
    """A run with what its agent reported, oldest first."""
    found = await _readable_run(token, run_id)
    events = await run_events.events(found.id)
    return {
        **run_json(rt, found),
        "events": [
            {"type": event.type, "at": event.at.isoformat(), **event.body} for event in events
        ],
    }


async def run_list(
    rt: Runtime,
    token: ApiToken,
    *,
    repository: str | None = None,
    issue_number: int | None = None,
    state: str | None = None,
    mode: str | None = None,
    limit: int = 30,
    offset: int = 0,
) -> dict[str, Any]:
    """Runs, newest first. `state` is a run state, or `active` / `finished`."""
    require_scope(token, tokens.READ)
    if repository is not None:
        require_repository(token, repository)
        repositories: list[str] | None = [repository]
    else:
        repositories = token.repositories or None
    if issue_number is not None and repository is None:
        raise invalid("repo", "`issue` needs `repo` as well")
    states = _states(state)
    try:
        wanted_mode = Mode(mode) if mode else None
    except ValueError:
        raise invalid("mode", f"`mode` must be one of {', '.join(m.value for m in Mode)}") from None
    total, found = await run_search.search(
        RunFilter(repositories, issue_number, states, wanted_mode), limit=limit, offset=offset
    )
    return {"total": total, "runs": [run_json(rt, r) for r in found]}


def _states(state: str | None) -> list[RunState] | None:
    if not state:
        return None
    if state == "active":
        return [s for s in RunState if s.active]
    if state == "finished":
        return [s for s in RunState if s.finished]
    try:
        return [RunState(state)]
    except ValueError:
        names = ", ".join(s.value for s in RunState)
        raise invalid("state", f"`state` must be active, finished or one of {names}") from None


async def log(
    token: ApiToken,
    run_id: int,
    *,
    after: int = 0,
    attempt: int = 1,
    limit: int = MAX_LOG_CHUNKS,
) -> dict[str, Any]:
    """The run's terminal output after chunk `after` of `attempt`, in order: the rest of that
    attempt, then each later attempt's (a re-run of the workflow numbers its chunks from 1
    again); `next_attempt` and `next_after` continue it."""
    found = await _readable_run(token, run_id)
    got = await chunks.since(
        found.id, after, min(max(limit, 1), MAX_LOG_CHUNKS), after_attempt=max(attempt, 1)
    )
    return {
        "run": found.id,
        "state": found.state.value,
        "attempt": found.attempt,
        "chunks": [{"attempt": c.attempt, "seq": c.seq, "data": c.data} for c in got],
        "next_attempt": got[-1].attempt if got else max(attempt, 1),
        "next_after": got[-1].seq if got else after,
        "finished": found.state.finished,
    }


async def fleet(rt: Runtime, token: ApiToken) -> dict[str, Any]:
    """Per installation (those of the token's repositories) and mode: active runs, spawns and
    spend today against the operator's budgets, active claims; and the kill switches."""
    require_scope(token, tokens.READ)
    repositories = await installations.active_repositories()
    allowed = [repo for repo in repositories if token.allows(repo["full_name"])]
    if token.repositories and not allowed:
        raise PermissionDeniedException("none of this token's repositories is installed")
    switches = await kill_switches.engaged_kill_switches()
    now = rt.clock.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    defaults = RepoConfig()
    limits = {mode: spawn_limits.limits_for(rt.settings, defaults, mode) for mode in Mode}
    result = []
    for installation_id in sorted({repo["installation_id"] for repo in allowed}):
        left = await spawn_budgets.budgets_left(installation_id, limits, now)
        spent = await run_counts.spent_since(installation_id, day_start)
        engaged = next((s for s in switches if s.scope == f"installation:{installation_id}"), None)
        result.append(
            {
                "installation": installation_id,
                "repositories": sorted(
                    r["full_name"] for r in allowed if r["installation_id"] == installation_id
                ),
                "modes": {
                    budget.mode.value: {
                        "active": budget.active,
                        "concurrency": budget.concurrency,
                        "spawned_today": budget.spawned,
                        "daily_spawns": budget.budget,
                    }
                    for budget in left
                },
                "spend_today_usd": round(spent, 4),
                "daily_cost_limit_usd": rt.settings.daily_cost_limit_usd,
                "lower_repository_budgets": await _lower_budgets(
                    rt, installation_id, allowed, limits
                ),
                "active_claims": await claims.active_count(installation_id),
                "kill_switch": {"engaged": True, "reason": engaged.reason}
                if engaged
                else {"engaged": False},
            }
        )
    everywhere = next((s for s in switches if s.scope == "global"), None)
    return {
        "day": now.date().isoformat(),
        "kill_switch": {
            "engaged": rt.settings.spawn_kill_switch or everywhere is not None,
            "reason": (everywhere.reason if everywhere else None)
            or ("SPAWN_KILL_SWITCH is set" if rt.settings.spawn_kill_switch else None),
        },
        "installations": result,
    }


async def _lower_budgets(
    rt: Runtime,
    installation_id: int,
    repositories: list[dict[str, Any]],
    operator: dict[Mode, spawn_limits.Limits],
) -> dict[str, Any]:
    """The budgets each repository's `.github/dispatch.yml` lowers below the operator's (the
    gates apply them to runs in that repository), by repository; repositories that lower
    nothing are left out."""
    lowered: dict[str, Any] = {}
    for repo in repositories:
        if repo["installation_id"] != installation_id:
            continue
        loaded = await repo_config.load(rt, installation_id, repo["full_name"])
        modes = {}
        for mode, limits in operator.items():
            own = spawn_limits.limits_for(rt.settings, loaded.config, mode)
            if (own.concurrency, own.daily_spawns) != (limits.concurrency, limits.daily_spawns):
                modes[mode.value] = {
                    "concurrency": own.concurrency,
                    "daily_spawns": own.daily_spawns,
                }
        cost = spawn_limits.daily_cost_limit(rt.settings, loaded.config)
        if modes or cost != rt.settings.daily_cost_limit_usd:
            lowered[repo["full_name"]] = {"modes": modes, "daily_cost_limit_usd": cost}
    return lowered
