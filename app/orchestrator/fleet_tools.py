"""The planning tools that read the agents' work: the runs of an issue or the repository's
latest, and the installation's fleet today (active runs, spawn budgets, spend, kill switch).
"""

from __future__ import annotations

import json

from app.agents import gates, run_search, runs, spawn_budgets, spawn_limits
from app.issues import repo_config
from app.modes import COMMAND_MODES
from app.orchestrator.tool_calls import ReadRuns, Result, Scope, untrusted


async def read_runs(scope: Scope, args: ReadRuns) -> Result:
    if args.issue is not None:
        found = await runs.for_issue(scope.repository, args.issue, limit=args.limit)
    else:
        found = await run_search.recent(scope.repository_id, limit=args.limit)
    if not found:
        where = f"issue #{args.issue}" if args.issue else scope.repository
        return Result(f"No agent runs on {where}.")
    listed = [
        {
            "run": r.id,
            "issue": r.issue_number,
            "mode": r.mode.value,
            "state": r.state.value,
            "outcome": r.outcome,
            "cost_usd": r.cost_usd,
            "created_at": r.created_at.isoformat(),
            "refusal": r.refusal,
            "summary": (r.summary or "")[:600] or None,
        }
        for r in found
    ]
    return Result(f"{len(listed)} run(s), newest first:\n" + untrusted(scope, "RUNS", listed))


async def fleet_status(scope: Scope) -> Result:
    rt = scope.rt
    now = rt.clock.now()
    loaded = await repo_config.load(rt, scope.installation_id, scope.repository)
    limits = {
        mode: spawn_limits.limits_for(rt.settings, loaded.config, mode) for mode in COMMAND_MODES
    }
    left = await spawn_budgets.budgets_left(scope.installation_id, limits, now)
    spent = await spawn_budgets.spent_today(scope.installation_id, now)
    limit = spawn_limits.daily_cost_limit(rt.settings, loaded.config)
    stopped = await gates.kill_switch(scope.installation_id, rt.settings)
    status = {
        "kill_switch": stopped.reason if stopped else "off",
        "spend_today_usd": round(spent, 4),
        "daily_cost_limit_usd": limit,
        "modes": [
            {
                "mode": str(b.mode),
                "active_runs": b.active,
                "concurrency_limit": b.concurrency,
                "spawned_today": b.spawned,
                "daily_spawn_budget": b.budget,
            }
            for b in left
        ],
    }
    return Result(json.dumps(status, indent=1))
