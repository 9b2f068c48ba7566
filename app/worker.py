"""The composition root of the work side: the runtime a process holds, the event router made of
each area's router in the order their handlers run, and the job registry binding every job name
to the area function that runs it. `app/server.py` and `app/cli/` build processes from these;
nothing in an area imports this module.

Where a webhook is routed: `event_router()`. Where a job runs: `job_registry()`.
"""

from __future__ import annotations

from typing import Any

from app import jobs
from app.agents import dispatcher, lifecycle
from app.agents import handlers as agent_handlers
from app.claims import expiry as claim_expiry
from app.claims import handlers as claim_handlers
from app.clock import Clock
from app.commands import handlers as command_handlers
from app.commands import runner
from app.config import Settings
from app.events import Router
from app.installations import handlers as installation_handlers
from app.intake import processing, sweep
from app.issues import handlers as issue_handlers
from app.issues import onboarding, reconcile
from app.orchestrator import execution, planning, progress
from app.orchestrator import handlers as orchestrator_handlers
from app.portal import activity as portal_activity
from app.portal import handlers as portal_handlers
from app.queue import JobRegistry, RetryPolicy, Worker
from app.remediation import fixes, pipeline
from app.remediation import handlers as remediation_handlers
from app.retention import service as retention
from app.runtime import Runtime
from app.search import handlers as search_handlers
from app.search import indexing
from app.search.providers import provider_from_settings


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    return Runtime.build(settings, clock=clock, embeddings=provider_from_settings(settings))


def event_router() -> Router:
    """Every area's handlers, in the order they run for one event: the installation and issue
    caches first (everything after reads them), then claims (a removed agent label ends its
    claim), then runs and pull requests — remediation before agents, so a merged fix of a
    production error moves its issue to `status/verifying` before the generic rule would call it
    done — then search, the portal's records, then missions (the label that starts one, edits
    that make a proposal stale, closed issues that free waiting items), and commands last."""
    return Router(
        installation_handlers.router,
        issue_handlers.router,
        claim_handlers.router,
        remediation_handlers.router,
        agent_handlers.router,
        search_handlers.router,
        portal_handlers.router,
        orchestrator_handlers.router,
        command_handlers.router,
    )


def job_registry(rt: Runtime, router: Router) -> JobRegistry:
    settings = rt.settings
    registry = JobRegistry()

    def retry(give_up: Any = None) -> RetryPolicy:
        return RetryPolicy(
            attempts=settings.delivery_max_attempts,
            base_seconds=settings.delivery_retry_base_seconds,
            give_up=give_up,
            max_wait_seconds=settings.delivery_retry_max_seconds,
            outage_hours=settings.github_outage_retry_hours,
            clock=rt.clock,
        )

    async def process_delivery(payload: dict[str, Any]) -> None:
        await processing.process(payload["guid"], rt, router)

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

    async def reopen_failed_fix(payload: dict[str, Any]) -> None:
        await fixes.reopen_failed(rt, payload["attempt"], payload["events"])

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

    async def backfill_portal_activity(payload: dict[str, Any]) -> None:
        await portal_activity.backfill(
            rt,
            payload["installation_id"],
            payload["repository"],
            payload["repository_id"],
            payload["number"],
        )

    async def prune() -> None:
        await retention.prune(rt)

    async def plan_mission(payload: dict[str, Any]) -> None:
        await planning.plan(rt, payload["mission"], payload["generation"])

    async def planning_failed(payload: dict[str, Any], exc: Exception) -> None:
        await planning.give_up(rt, payload["mission"], exc)

    async def execute_mission(payload: dict[str, Any]) -> None:
        await execution.execute(rt, payload["proposal"])

    async def execution_failed(payload: dict[str, Any], exc: Exception) -> None:
        await execution.give_up(rt, payload["proposal"], exc)

    async def report_mission(payload: dict[str, Any]) -> None:
        await progress.report(rt, payload["proposal"], payload.get("times", 0))

    async def expire_claims() -> None:
        await claim_expiry.expire_due(rt)

    # Deliveries count their own attempts in the journal (processing raises RetryRequested).
    registry.job(jobs.PROCESS_DELIVERY, process_delivery, RetryPolicy(attempts=1))
    registry.job(jobs.RUN_COMMAND, run_command, retry(command_failed))
    registry.job(jobs.ONBOARD_REPOSITORY, onboard_repository, retry())
    registry.job(jobs.DISPATCH_RUN, dispatch_run, retry())
    registry.job(jobs.RUN_EFFECTS, run_effects, retry())
    registry.job(jobs.OPEN_ALERT_ISSUE, open_alert_issue, retry())
    registry.job(jobs.ALERT_SUMMARY, alert_summary, retry())
    registry.job(jobs.CONSIDER_SPAWN, consider_spawn, retry())
    registry.job(jobs.REOPEN_FAILED_FIX, reopen_failed_fix, retry())
    registry.job(jobs.EMBED_ISSUE, embed_issue, retry())
    registry.job(jobs.EMBED_REPOSITORY, embed_repository, retry())
    registry.job(jobs.PORTAL_BACKFILL_ACTIVITY, backfill_portal_activity, retry())
    registry.job(jobs.PLAN_MISSION, plan_mission, retry(planning_failed))
    registry.job(jobs.EXECUTE_MISSION, execute_mission, retry(execution_failed))
    registry.job(jobs.REPORT_MISSION, report_mission, retry())
    registry.schedule(jobs.WATCH_RUNS, settings.watchdog_schedule, watch_runs)
    registry.schedule(jobs.VERIFY_FIXES, settings.fix_verification_schedule, verify_fixes)
    registry.schedule(
        jobs.BACKFILL_EMBEDDINGS, settings.embedding_backfill_schedule, backfill_embeddings
    )
    registry.schedule(jobs.SWEEP_DELIVERIES, settings.delivery_sweep_schedule, sweep_deliveries)
    registry.schedule(jobs.RECONCILE_ISSUES, settings.reconcile_schedule, reconcile_issues)
    registry.schedule(jobs.PRUNE, settings.prune_schedule, prune)
    registry.schedule(jobs.EXPIRE_CLAIMS, settings.claim_expiry_schedule, expire_claims)
    return registry


def build_worker(
    rt: Runtime, router: Router | None = None, *, concurrency: int | None = None
) -> Worker:
    """A worker running every job of this process's runtime."""
    return Worker(
        job_registry(rt, router or event_router()),
        concurrency=concurrency or rt.settings.worker_concurrency,
        heartbeat_seconds=rt.settings.job_heartbeat_seconds,
        poll_seconds=rt.settings.worker_poll_seconds,
    )
