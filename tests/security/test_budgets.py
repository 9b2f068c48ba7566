"""M7: an agent cannot spend an installation's day with one report, and a repository's config
cannot raise the operator's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from app.agents import run_counts, runs, spawn_limits
from app.issues.repo_config import parse
from app.modes import Mode
from tests.agents.loop import AUDIENCE, create_run


async def test_a_self_reported_cost_is_clamped_to_the_runs_cap(client, oidc, github, repo, rt):
    run = await create_run(github, repo, state="running", workflow_run_id=777001)
    token = oidc.token(
        AUDIENCE, repository=repo[1]["full_name"], repository_id=repo[1]["id"], run_id=777001
    )

    response = await client.post(
        f"/api/runs/{run.id}/events",
        json={
            "type": "completed",
            "outcome": "completed",
            "summary": "done",
            "cost_usd": 1e300,
            "turns": 10**9,
        },
        headers={"authorization": f"Bearer {token}"},
    )

    assert response.status_code == 202
    stored = await runs.get(run.id)
    assert stored.cost_usd == rt.settings.max_agent_cost_per_run
    assert stored.turns == Mode.INVESTIGATE.spec.max_turns
    # The installation's day is not spent: the daily cost budget still has room.
    spent = await run_counts.spent_since(run.installation_id, datetime(2000, 1, 1, tzinfo=UTC))
    assert spent < rt.settings.daily_cost_limit_usd


def test_a_repository_can_tighten_budgets_but_never_loosen_them(settings):
    loose = parse(
        """
budgets:
  daily_spawns: {investigate: 1000}
  max_concurrent: {investigate: 1000}
  daily_cost_usd: 100000
  max_cost_per_run_usd: 1000
  cooldown_hours: 0
"""
    )
    tight = parse("budgets: {daily_spawns: {investigate: 2}, max_cost_per_run_usd: 1}")

    widened = spawn_limits.limits_for(settings, loose, Mode.INVESTIGATE)
    narrowed = spawn_limits.limits_for(settings, tight, Mode.INVESTIGATE)

    assert widened.daily_spawns == settings.spawn_budget(Mode.INVESTIGATE)
    assert widened.concurrency == settings.spawn_concurrency(Mode.INVESTIGATE)
    assert widened.daily_cost_usd == settings.daily_cost_limit_usd
    assert widened.cost_cap_usd == settings.max_agent_cost_per_run
    assert widened.cooldown_hours == settings.spawn_cooldown_hours
    assert narrowed.daily_spawns == 2 and narrowed.cost_cap_usd == 1
