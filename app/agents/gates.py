"""Spawn gates: may this run start now? Checked in this order, each decision stored with its
reason (and when the refusal clears; see `spawn_decisions`):

    kill switch → one active run per issue → cooldown per fingerprint → minimum event count →
    spawn delay → concurrency per mode → daily spawn budget per mode → daily cost budget

The budget row of (installation, mode, UTC day) is locked for the whole check and incremented in
the same transaction, and runs become `dispatched` inside it, so fifty concurrent requests
against a budget of ten dispatch exactly ten, across any number of workers.

The daily cost budget counts an installation's spend today (`spawn_budgets.spent_today`); other
areas ask it through `cost_refusal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.agents import run_counts, runs
from app.agents.runs import Run
from app.agents.spawn_budgets import spent_today
from app.agents.spawn_limits import Limits, limits_for
from app.clock import parse_timestamp
from app.config import Settings
from app.db import engine
from app.issues.repo_config import RepoConfig
from app.modes import Mode


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
        lambda: _kill_switch(run.installation_id, limits.kill_switch),
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
        lambda: _kill_switch(installation_id, limits.kill_switch),
        lambda: _active_run(repository_id, issue_number, None),
        lambda: _alert_gates(fingerprint, limits, now, alert),
    )
    for check in checks:
        if (refusal := await check()) is not None:
            return refusal
    return None


async def may_run_again(run: Run, settings: Settings) -> Decision | None:
    """Whether a finished run may run again for a re-run of its workflow run (None: yes): not
    while the kill switch is on, nor while another run is active on its issue. Its budgets were
    taken when it was dispatched."""
    refusal = await _kill_switch(run.installation_id, settings.spawn_kill_switch)
    return refusal or await _active_run(run.repository_id, run.issue_number, run.id)


async def _kill_switch(installation_id: int, kill_switch: bool) -> Decision | None:
    async with engine.connection() as connection:
        engaged = await connection.fetchrow(
            "SELECT scope, reason FROM kill_switch WHERE engaged AND scope = ANY($1) "
            "ORDER BY scope = 'global' DESC LIMIT 1",
            ["global", f"installation:{installation_id}"],
        )
    if not kill_switch and engaged is None:
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
        active = await run_counts.working_count(run.installation_id, run.mode, other_than=run.id)
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


async def kill_switch(installation_id: int, settings: Settings) -> Decision | None:
    """The kill switch's refusal (global, the environment's, or this installation's), or None."""
    limits = limits_for(settings, RepoConfig(), Mode.INVESTIGATE)
    return await _kill_switch(installation_id, limits.kill_switch)


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
