"""What the spawn gates allow: the operator's limits from the environment, tightened per
repository by its `budgets` config (a repository may lower a budget or lengthen a cooldown, never
loosen what the operator set)."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.issues.repo_config import RepoConfig
from app.modes import Mode


@dataclass(frozen=True)
class Limits:
    kill_switch: bool
    concurrency: int
    daily_spawns: int
    daily_cost_usd: float
    cost_cap_usd: float
    cooldown_hours: float
    min_events: int
    spawn_delay_minutes: float


def limits_for(settings: Settings, config: RepoConfig, mode: Mode) -> Limits:
    """The operator's limits (the environment), tightened by the repository's `budgets`: a
    repository may lower a budget or lengthen a cooldown, never loosen what the operator set."""
    budgets = config.budgets
    concurrency = settings.spawn_concurrency(mode)
    daily_spawns = settings.spawn_budget(mode)
    return Limits(
        kill_switch=settings.spawn_kill_switch,
        concurrency=min(budgets.max_concurrent.get(mode, concurrency), concurrency),
        daily_spawns=min(budgets.daily_spawns.get(mode, daily_spawns), daily_spawns),
        daily_cost_usd=_lower(budgets.daily_cost_usd, settings.daily_cost_limit_usd),
        cost_cap_usd=_lower(budgets.max_cost_per_run_usd, settings.max_agent_cost_per_run),
        cooldown_hours=max(budgets.cooldown_hours or 0.0, settings.spawn_cooldown_hours),
        min_events=settings.min_event_count_to_spawn,
        spawn_delay_minutes=settings.spawn_delay_minutes,
    )


def _lower(repository: float | None, operator: float) -> float:
    return operator if repository is None else min(repository, operator)


def daily_cost_limit(settings: Settings, config: RepoConfig) -> float:
    """The installation's daily cost budget as a repository sees it (its config may lower it)."""
    return _lower(config.budgets.daily_cost_usd, settings.daily_cost_limit_usd)
