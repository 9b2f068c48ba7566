"""Spawn gates: may this run start now? Checked in this order, each decision stored with its
reason (and when the refusal clears):

    kill switch → one active run per issue → cooldown per fingerprint → minimum event count →
    spawn delay → concurrency per mode → daily spawn budget per mode → daily cost budget

The budget row of (installation, mode, UTC day) is locked for the whole check and incremented in
the same transaction, and runs become `dispatched` inside it, so fifty concurrent requests
against a budget of ten dispatch exactly ten, across any number of workers.

The daily cost budget counts what finished runs reported and what was spent outside runs (a
mission's calls to Claude, `charge`); other areas ask it through `cost_refusal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.agents import runs
from app.agents.runs import Run
from app.clock import parse_timestamp
from app.config import Settings
from app.db import engine, pruning
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


@dataclass(frozen=True)
class Decision:
    allowed: bool
    gate: str
    reason: str
    clears_at: datetime | None = None

    @classmethod
    def allow(cls) -> Decision:
        return cls(True, "all", "every gate passed")


@dataclass(frozen=True)
class AlertFacts:
    """What the alert-only gates look at (remediation runs carry a fingerprint)."""

    event_count: int
    first_seen: datetime

    @classmethod
    def of(cls, run: Run) -> AlertFacts | None:
        """From the error context an alert run was created with."""
        context = run.error_context or {}
        if run.fingerprint is None or "event_count" not in context:
            return None
        return cls(
            int(context["event_count"]), parse_timestamp(context["first_seen"]) or run.created_at
        )


def _next_utc_midnight(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


async def decide(run: Run, limits: Limits, now: datetime) -> Decision:
    """Run the gates for `run` inside the caller's transaction; on success the day's budget is
    taken. The caller marks the run dispatched in the same transaction."""
    alert = AlertFacts.of(run)
    checks = (
        lambda: _kill_switch(run.installation_id, limits),
        lambda: _active_run(run.repository_id, run.issue_number, run.id),
        lambda: _alert_gates(run.fingerprint, limits, now, alert),
    )
    for check in checks:
        if (refusal := await check()) is not None:
            return refusal
    return await _take_budget(run, limits, now)


async def precheck_alert(
    installation_id: int,
    repository_id: int,
    issue_number: int,
    fingerprint: str,
    limits: Limits,
    now: datetime,
    alert: AlertFacts,
) -> Decision | None:
    """The gates an alert can fail before a run is worth creating (kill switch, active run,
    cooldown, minimum events, spawn delay); None if they all pass."""
    checks = (
        lambda: _kill_switch(installation_id, limits),
        lambda: _active_run(repository_id, issue_number, None),
        lambda: _alert_gates(fingerprint, limits, now, alert),
    )
    for check in checks:
        if (refusal := await check()) is not None:
            return refusal
    return None


async def _kill_switch(installation_id: int, limits: Limits) -> Decision | None:
    async with engine.connection() as connection:
        engaged = await connection.fetchrow(
            "SELECT scope, reason FROM kill_switch WHERE engaged AND scope = ANY($1) "
            "ORDER BY scope = 'global' DESC LIMIT 1",
            ["global", f"installation:{installation_id}"],
        )
    if not limits.kill_switch and engaged is None:
        return None
    why = (engaged["reason"] if engaged else None) or "no reason given"
    where = " for this installation" if engaged and engaged["scope"] != "global" else ""
    return Decision(
        False,
        "kill_switch",
        f"the kill switch is on{where} ({why}); it clears when an operator turns it off",
    )


async def _active_run(repository_id: int, issue_number: int, run_id: int | None) -> Decision | None:
    other = await runs.active_for_issue(repository_id, issue_number, other_than=run_id)
    if other is None:
        return None
    return Decision(False, "one_active_run", f"run #{other.id} is still active on this issue")


async def _alert_gates(
    fingerprint: str | None, limits: Limits, now: datetime, alert: AlertFacts | None
) -> Decision | None:
    if fingerprint is None:
        return None
    async with engine.connection() as connection:
        until = await connection.fetchval(
            "SELECT until FROM cooldown WHERE fingerprint = $1 AND until > $2", fingerprint, now
        )
    if until is not None:
        return Decision(False, "cooldown", "this error is in its cooldown", until)
    if alert is None:
        return None
    if alert.event_count < limits.min_events:
        return Decision(
            False,
            "min_events",
            f"{alert.event_count} of the {limits.min_events} events needed to spawn",
        )
    if limits.spawn_delay_minutes > 0:
        ready_at = alert.first_seen + timedelta(minutes=limits.spawn_delay_minutes)
        if ready_at > now:
            return Decision(False, "spawn_delay", "waiting out the spawn delay", ready_at)
    return None


async def _take_budget(run: Run, limits: Limits, now: datetime) -> Decision:
    day = now.date()
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO spawn_budget (installation_id, mode, day) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            run.installation_id,
            run.mode.value,
            day,
        )
        spawned = await connection.fetchval(
            "SELECT spawned FROM spawn_budget WHERE installation_id = $1 AND mode = $2 "
            "AND day = $3 FOR UPDATE",
            run.installation_id,
            run.mode.value,
            day,
        )
        active = await runs.working_count(run.installation_id, run.mode, other_than=run.id)
        if active >= limits.concurrency:
            return Decision(
                False,
                "concurrency",
                f"{active} {run.mode.value} runs are already active (the limit is "
                f"{limits.concurrency}); it clears when one of them finishes",
            )
        if spawned >= limits.daily_spawns:
            return Decision(
                False,
                "daily_spawn_budget",
                f"today's {run.mode.value} budget is spent ({spawned} of {limits.daily_spawns})",
                _next_utc_midnight(now),
            )
        refusal = await cost_refusal(run.installation_id, limits.daily_cost_usd, now)
        if refusal is not None:
            return refusal
        await connection.execute(
            "UPDATE spawn_budget SET spawned = spawned + 1 WHERE installation_id = $1 "
            "AND mode = $2 AND day = $3",
            run.installation_id,
            run.mode.value,
            day,
        )
    return Decision.allow()


def daily_cost_limit(settings: Settings, config: RepoConfig) -> float:
    """The installation's daily cost budget as a repository sees it (its config may lower it)."""
    return _lower(config.budgets.daily_cost_usd, settings.daily_cost_limit_usd)


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), datetime.min.time(), tzinfo=now.tzinfo)


async def spent_today(installation_id: int, now: datetime) -> float:
    """Today's spend (UTC) of an installation: what its finished runs reported, and every
    charge outside runs (mission planning)."""
    since = _day_start(now)
    async with engine.connection() as connection:
        charged = await connection.fetchval(
            "SELECT coalesce(sum(cost_usd), 0) FROM cost_charge "
            "WHERE installation_id = $1 AND at >= $2",
            installation_id,
            since,
        )
    return await runs.spent_since(installation_id, since) + float(charged)


async def cost_refusal(
    installation_id: int, limit_usd: float, now: datetime, *, more_usd: float = 0.0
) -> Decision | None:
    """The daily cost budget's refusal, or None: spent already at the limit, or about to spend
    `more_usd` that would take it past the limit (a mission's planning asks with its cap)."""
    spent = await spent_today(installation_id, now)
    if spent < limit_usd and spent + more_usd <= limit_usd:
        return None
    reason = f"today's agent spend is ${spent:.2f} of ${limit_usd:.2f}"
    if more_usd > 0 and spent < limit_usd:
        reason += f", and this may spend up to ${more_usd:.2f} more"
    return Decision(False, "daily_cost_budget", reason, _next_utc_midnight(now))


async def charge(
    installation_id: int, cost_usd: float, *, source: str, reference: str, at: datetime
) -> None:
    """Count spend that is not a run's (a mission's call to Claude) against the daily budget."""
    if cost_usd <= 0:
        return
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO cost_charge (installation_id, source, reference, cost_usd, at) "
            "VALUES ($1, $2, $3, $4, $5)",
            installation_id,
            source,
            reference,
            cost_usd,
            at,
        )


async def kill_switch(installation_id: int, settings: Settings) -> Decision | None:
    """The kill switch's refusal (global, the environment's, or this installation's), or None."""
    limits = limits_for(settings, RepoConfig(), Mode.INVESTIGATE)
    return await _kill_switch(installation_id, limits)


async def record(
    run: Run | None,
    decision: Decision,
    *,
    installation_id: int | None = None,
    mode: Mode | None = None,
    fingerprint: str | None = None,
) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO spawn_decision (run_id, installation_id, mode, gate, allowed, reason, "
            "clears_at, fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            run.id if run else None,
            run.installation_id if run else installation_id,
            (run.mode if run else Mode(mode or Mode.INVESTIGATE)).value,
            decision.gate,
            decision.allowed,
            decision.reason,
            decision.clears_at,
            run.fingerprint if run else fingerprint,
        )


# Refusals that clear on their own (a run finishes, a new day starts).
_BUDGET_GATES = ["concurrency", "daily_spawn_budget", "daily_cost_budget"]


async def refused_recently(fingerprint: str, now: datetime) -> bool:
    """Whether a budget gate refused a run for this error and has not cleared yet: later alerts
    of the same error then wait instead of adding a refusal each."""
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM spawn_decision WHERE fingerprint = $1 AND NOT allowed "
                "AND gate = ANY($2) AND coalesce(clears_at, at + interval '10 minutes') > $3 "
                "LIMIT 1",
                fingerprint,
                _BUDGET_GATES,
                now,
            )
        )


async def start_cooldown(fingerprint: str, until: datetime) -> None:
    """No new run on this error before `until` (a later cooldown never shortens an earlier)."""
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO cooldown (fingerprint, until) VALUES ($1, $2) "
            "ON CONFLICT (fingerprint) DO UPDATE SET "
            "until = greatest(cooldown.until, EXCLUDED.until)",
            fingerprint,
            until,
        )


async def refund(run: Run, day: datetime) -> None:
    """Give back the budget a run took when nothing was spawned after all."""
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE spawn_budget SET spawned = greatest(spawned - 1, 0) WHERE installation_id = $1 "
            "AND mode = $2 AND day = $3",
            run.installation_id,
            run.mode.value,
            day.date(),
        )


@dataclass(frozen=True)
class BudgetLeft:
    mode: Mode
    spawned: int
    budget: int
    active: int
    concurrency: int


async def budgets_left(
    installation_id: int, limits_by_mode: dict[Mode, Limits], now: datetime
) -> list[BudgetLeft]:
    async with engine.connection() as connection:
        spawned = dict(
            await connection.fetch(
                "SELECT mode, spawned FROM spawn_budget WHERE installation_id = $1 AND day = $2",
                installation_id,
                now.date(),
            )
        )
    active = await runs.working_by_mode(installation_id)
    return [
        BudgetLeft(
            mode, spawned.get(mode, 0), limits.daily_spawns, active.get(mode, 0), limits.concurrency
        )
        for mode, limits in limits_by_mode.items()
    ]


async def set_kill_switch(
    engaged: bool, *, installation_id: int | None, reason: str | None, by: str
) -> None:
    scope = "global" if installation_id is None else f"installation:{installation_id}"
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO kill_switch (scope, engaged, reason, set_by, at) "
            "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (scope) DO UPDATE SET "
            "engaged = EXCLUDED.engaged, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, "
            "at = now()",
            scope,
            engaged,
            reason,
            by,
        )


# A refusal still in force is kept whatever its age: `refused_recently` reads it.
_PRUNE_DECISIONS = """
DELETE FROM spawn_decision
WHERE id IN (
    SELECT id FROM spawn_decision
    WHERE at < $2 AND (clears_at IS NULL OR clears_at < $3)
    ORDER BY at LIMIT $1
    FOR UPDATE SKIP LOCKED
)
"""


async def prune_decisions(
    cutoff: datetime, now: datetime, *, batch: int, dry_run: bool = False
) -> pruning.Pruned:
    """Forget decisions made before `cutoff` (the run keeps its refusal reason)."""
    what = "spawn decisions"
    if dry_run:
        rows, size = await pruning.estimate(
            "SELECT count(*), sum(pg_column_size(spawn_decision.*)) FROM spawn_decision "
            "WHERE at < $1 AND (clears_at IS NULL OR clears_at < $2)",
            cutoff,
            now,
        )
        return pruning.Pruned(what, rows, size, cutoff)
    rows = await pruning.in_batches(_PRUNE_DECISIONS, cutoff, now, batch=batch)
    return pruning.Pruned(what, rows, None, cutoff)


async def oldest_decision() -> datetime | None:
    async with engine.connection() as connection:
        return await connection.fetchval("SELECT min(at) FROM spawn_decision")


async def last_decision(run_id: int) -> Decision | None:
    """The gates' latest decision about a run (what a refused API caller is told)."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT gate, allowed, reason, clears_at FROM spawn_decision WHERE run_id = $1 "
            "ORDER BY id DESC LIMIT 1",
            run_id,
        )
    if row is None:
        return None
    return Decision(row["allowed"], row["gate"], row["reason"], row["clears_at"])


@dataclass(frozen=True)
class KillSwitch:
    scope: str  # "global" or "installation:<id>"
    reason: str | None
    set_by: str | None
    at: datetime | None


async def engaged_kill_switches() -> list[KillSwitch]:
    """The kill switches that are on now (set with `dispatch killswitch`)."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT scope, reason, set_by, at FROM kill_switch WHERE engaged ORDER BY scope"
        )
    return [KillSwitch(**dict(row)) for row in rows]
