"""Auto-dispatch rules from `.github/dispatch.yml`: when an issue comes to carry all the labels of
a rule (`when: {labels: [status/ready, type/bug]}`), a run of the rule's mode starts — once per
issue and mode — through the same spawn gates as a command. Whoever added the label is the
requester."""

from __future__ import annotations

import logging

from app import jobs, queue
from app.agents import runs
from app.db import engine
from app.events import Event
from app.issues import repo_config
from app.modes import Mode
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def on_labels(event: Event, rt: Runtime) -> int:
    """Start the runs whose rules the issue now matches; returns how many were queued."""
    if event.installation_id is None or event.repository is None:
        return 0
    issue = event.payload["issue"]
    if issue.get("state") == "closed" or "pull_request" in issue:
        return 0
    loaded = await repo_config.load(rt, event.installation_id, event.repository)
    if loaded.error or not loaded.config.auto_dispatch:
        return 0
    labels = {label["name"] for label in issue.get("labels") or []}
    started = 0
    for rule in loaded.config.auto_dispatch:
        if not set(rule.when.labels) <= labels:
            continue
        mode = Mode(rule.mode)
        if await _already_started(event.payload["repository"]["id"], issue["number"], mode):
            continue
        try:
            async with engine.transaction():
                run = await runs.create(
                    installation_id=event.installation_id,
                    repository=event.repository,
                    repository_id=event.payload["repository"]["id"],
                    issue_number=issue["number"],
                    mode=mode,
                    requested_by=event.sender,
                    notes=f"auto-dispatched: the issue has {', '.join(rule.when.labels)}",
                )
                await queue.enqueue(
                    jobs.DISPATCH_RUN, {"run": run.id}, dedupe_key=f"dispatch:{run.id}"
                )
        except runs.ActiveRunExists:
            continue
        log.info("auto-dispatched", extra={"run": run.id, "mode": mode.value})
        started += 1
    return started


async def _already_started(repository_id: int, number: int, mode: Mode) -> bool:
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM run WHERE repository_id = $1 AND issue_number = $2 AND mode = $3 "
                "AND notes LIKE 'auto-dispatched:%' LIMIT 1",
                repository_id,
                number,
                mode.value,
            )
        )
