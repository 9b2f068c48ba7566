"""The job names, their priorities and payload shapes: the one place that knows them.

Areas enqueue by these names (`queue.enqueue(jobs.RUN_COMMAND, ...)`); the composition root
(`app/worker.py`) binds each name to the area function that runs it.
"""

from __future__ import annotations

from typing import TypedDict

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
REOPEN_FAILED_FIX = "fixes.reopen_failed"
EMBED_ISSUE = "search.embed_issue"
BACKFILL_EMBEDDINGS = "search.backfill"
EMBED_REPOSITORY = "search.embed_repository"
PORTAL_BACKFILL_ACTIVITY = "portal.backfill_activity"
PRUNE = "storage.prune"
PLAN_MISSION = "missions.plan"
EXECUTE_MISSION = "missions.execute"
REPORT_MISSION = "missions.report"
EXPIRE_CLAIMS = "claims.expire"

# Higher runs first when jobs wait. Deliveries are short and acknowledge commands (👀), so they
# go ahead of the work they create: a burst of commands does not delay the next one's 👀.
# Deliveries go before other work (the other jobs follow from them). A delivery that carries a
# command, and then the command's own job, go before any other delivery: under a flood of
# webhooks a developer's command gets its 👀 and its answer in its own time, not after the
# backlog. (A command's job picked while its delivery still sends the 👀 waits for it a moment:
# `commands/eyes.py`, EYES_WAIT_SECONDS.)
PRIORITIES = {PROCESS_DELIVERY: 10, RUN_COMMAND: 20}
COMMAND_DELIVERY_PRIORITY = 30


class DeliveryJob(TypedDict):
    guid: str


class CommandJob(TypedDict):
    command: int


class OnboardJob(TypedDict):
    installation_id: int
    repository: str


class DispatchJob(TypedDict):
    run: int


class RunEffectsJob(TypedDict, total=False):
    run: int
    event: str
    plan: str


class AlertJob(TypedDict):
    fingerprint: str


class FailedFixJob(TypedDict):
    attempt: int
    events: list[dict[str, object]]


class EmbedIssueJob(TypedDict):
    repository_id: int
    number: int
    check_duplicates: bool


class EmbedRepositoryJob(TypedDict):
    repository_id: int


class PortalActivityJob(TypedDict):
    installation_id: int
    repository: str
    repository_id: int
    number: int


class PlanMissionJob(TypedDict):
    mission: int
    generation: int


class ExecuteMissionJob(TypedDict):
    proposal: int


class ReportMissionJob(TypedDict):
    proposal: int
    times: int
