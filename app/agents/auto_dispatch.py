"""Auto-dispatch rules from `.github/dispatch.yml`: when an issue comes to carry all the labels of
a rule (`when: {labels: [status/ready, type/bug]}`), a run of the rule's mode starts — once per
issue and mode — through the one run-starting service, and so the same spawn gates as a command.
Whoever added the label is the requester."""

from __future__ import annotations

import logging

from app.agents import runs, spawn
from app.agents.runs import NewRun, Run, Trigger
from app.events import Event
from app.issues import repo_config
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
    repository_id = event.payload["repository"]["id"]
    started = 0
    for rule in loaded.config.auto_dispatch:
        if not set(rule.when.labels) <= labels:
            continue
        if await runs.started_by(repository_id, issue["number"], rule.mode, Trigger.AUTO_RULE):
            continue
        result = await spawn.request_run(
            NewRun(
                installation_id=event.installation_id,
                repository=event.repository,
                repository_id=repository_id,
                issue_number=issue["number"],
                mode=rule.mode,
                trigger=Trigger.AUTO_RULE,
                requested_by=event.sender,
                notes=f"auto-dispatched: the issue has {', '.join(rule.when.labels)}",
            )
        )
        if isinstance(result, Run):
            log.info("auto-dispatched", extra={"run": result.id, "mode": rule.mode.value})
            started += 1
    return started
