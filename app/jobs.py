"""The job names and schedules: the one place that knows them.

Areas enqueue by these names (`queue.enqueue(jobs.RUN_COMMAND, ...)`); `registry()` binds each
name to the area function that runs it, importing areas lazily so that areas can import this
module without a cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.queue import JobRegistry
    from app.runtime import Runtime

PROCESS_DELIVERY = "deliveries.process"
SWEEP_DELIVERIES = "deliveries.sweep"
RUN_COMMAND = "commands.run"
ONBOARD_REPOSITORY = "repositories.onboard"
RECONCILE_ISSUES = "issues.reconcile"
DISPATCH_RUN = "runs.dispatch"
RUN_EFFECTS = "runs.effects"
WATCH_RUNS = "runs.watchdog"
OPEN_ALERT_ISSUE = "alerts.open_issue"
ALERT_SUMMARY = "alerts.summary"
CONSIDER_SPAWN = "alerts.consider_spawn"
VERIFY_FIXES = "fixes.verify_due"
EMBED_ISSUE = "search.embed_issue"
BACKFILL_EMBEDDINGS = "search.backfill"
EMBED_REPOSITORY = "search.embed_repository"

# Higher runs first when jobs wait. Deliveries are short and acknowledge commands (👀), so they
# go ahead of the work they create: a burst of commands does not delay the next one's 👀.
PRIORITIES = {PROCESS_DELIVERY: 10}


def registry(rt: Runtime) -> JobRegistry:
    from app.agents import dispatcher, lifecycle
    from app.commands import runner
    from app.intake import processing, sweep
    from app.issues import onboarding, reconcile
    from app.queue import JobRegistry, RetryPolicy
    from app.remediation import fixes, pipeline
    from app.search import indexing

    settings = rt.settings
    reg = JobRegistry()

    def retry(give_up=None) -> RetryPolicy:  # type: ignore[no-untyped-def]
        return RetryPolicy(
            attempts=settings.delivery_max_attempts,
            base_seconds=settings.delivery_retry_base_seconds,
            give_up=give_up,
        )

    async def process_delivery(payload: dict[str, Any]) -> None:
        await processing.process(payload["guid"], rt)

    async def run_command(payload: dict[str, Any]) -> None:
        await runner.execute(payload["command"], rt)

    async def command_failed(payload: dict[str, Any], exc: Exception) -> None:
        await runner.give_up(payload, exc, rt)

    async def onboard_repository(payload: dict[str, Any]) -> None:
        await onboarding.onboard(rt, payload["installation_id"], payload["repository"])

    async def dispatch_run(payload: dict[str, Any]) -> None:
        await dispatcher.dispatch(payload["run"], rt)

    async def run_effects(payload: dict[str, Any]) -> None:
        await lifecycle.effects(rt, payload)

    async def watch_runs() -> None:
        await lifecycle.watchdog(rt)

    async def open_alert_issue(payload: dict[str, Any]) -> None:
        await pipeline.open_issue(rt, payload["fingerprint"])

    async def alert_summary(payload: dict[str, Any]) -> None:
        await pipeline.update_summary(rt, payload["fingerprint"])

    async def consider_spawn(payload: dict[str, Any]) -> None:
        await pipeline.consider_spawn(rt, payload["fingerprint"])

    async def verify_fixes() -> None:
        await fixes.verify_due(rt)

    async def embed_issue(payload: dict[str, Any]) -> None:
        await indexing.embed_issue(rt, payload)

    async def backfill_embeddings() -> None:
        await indexing.backfill(rt)

    async def embed_repository(payload: dict[str, Any]) -> None:
        await indexing.backfill(rt, payload["repository_id"])

    async def sweep_deliveries() -> None:
        await sweep.run(rt)

    async def reconcile_issues() -> None:
        await reconcile.run(rt)

    # Deliveries count their own attempts in the journal (processing raises RetryRequested).
    reg.job(PROCESS_DELIVERY, process_delivery, RetryPolicy(attempts=1))
    reg.job(RUN_COMMAND, run_command, retry(command_failed))
    reg.job(ONBOARD_REPOSITORY, onboard_repository, retry())
    reg.job(DISPATCH_RUN, dispatch_run, retry())
    reg.job(RUN_EFFECTS, run_effects, retry())
    reg.schedule(WATCH_RUNS, settings.watchdog_schedule, watch_runs)
    reg.job(OPEN_ALERT_ISSUE, open_alert_issue, retry())
    reg.job(ALERT_SUMMARY, alert_summary, retry())
    reg.job(CONSIDER_SPAWN, consider_spawn, retry())
    reg.schedule(VERIFY_FIXES, settings.fix_verification_schedule, verify_fixes)
    reg.job(EMBED_ISSUE, embed_issue, retry())
    reg.schedule(BACKFILL_EMBEDDINGS, settings.embedding_backfill_schedule, backfill_embeddings)
    reg.job(EMBED_REPOSITORY, embed_repository, retry())
    reg.schedule(SWEEP_DELIVERIES, settings.delivery_sweep_schedule, sweep_deliveries)
    reg.schedule(RECONCILE_ISSUES, settings.reconcile_schedule, reconcile_issues)
    load_handlers()
    return reg


# Modules that register event handlers, in the order their handlers should run for an event
# (the cache is updated before label rules and commands look at it).
HANDLER_MODULES = (
    "app.installations.handlers",
    "app.issues.handlers",
    "app.agents.handlers",
    "app.remediation.handlers",
    "app.search.handlers",
    "app.commands.handlers",
)


def load_handlers() -> None:
    """Import every module that registers event handlers on `app.events.router`."""
    for module in HANDLER_MODULES:
        importlib.import_module(module)
