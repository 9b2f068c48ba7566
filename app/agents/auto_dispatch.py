"""Auto-dispatch rules from `.github/dispatch.yml`: when an issue comes to carry all the labels of
a rule (`when: {labels: [status/ready, type/bug]}`), a run of the rule's mode starts — once per
issue and mode — through the one run-starting service, and so the same spawn gates as a command.

Whoever added the label is the requester, and must have the permission the rule's mode needs as
a command (`permissions:` in the config, else write): labels an issue form applies when a
stranger opens an issue never start a run, and adding a label starts only the rules that name
it. An `implement` rule waits for an approved plan, and a `qa` rule for a pull request linked to
the issue, as the commands do."""

from __future__ import annotations

import logging

from app.agents import plans, qa, run_counts, spawn
from app.agents.plans import PlanState
from app.agents.runs import NewRun, Run, Trigger
from app.audit import log as audit
from app.events import Event
from app.github.permissions import Permission
from app.issues import repo_config
from app.issues.repo_config import RepoConfig
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
    # On `labeled`, only the rules of the label just added: a writer adding another label to an
    # issue does not start, under the writer's permission, a rule its author's labels matched.
    added = (event.payload.get("label") or {}).get("name") if event.action == "labeled" else None
    repository_id = event.payload["repository"]["id"]
    started = 0
    for rule in loaded.config.auto_dispatch:
        if not set(rule.when.labels) <= labels:
            continue
        if event.action == "labeled" and added not in rule.when.labels:
            continue
        if await run_counts.started_by(
            repository_id, issue["number"], rule.mode, Trigger.AUTO_RULE
        ):
            continue
        refusal = await _refusal(rt, event, loaded.config, rule.mode, repository_id)
        target = None
        if refusal is None and rule.mode.spec.checks_pull:
            found = await qa.target_for(
                rt.github.installation(event.installation_id),
                repository=event.repository,
                repository_id=repository_id,
                number=issue["number"],
                is_pull=False,
                allow_forks=loaded.config.qa.allow_forks,
            )
            refusal = found.reason if isinstance(found, qa.Refused) else None
            target = None if isinstance(found, qa.Refused) else found
        if refusal is not None:
            await audit.record(
                actor=event.sender or "unknown",
                action="run.auto_dispatch",
                target=f"{event.repository}#{issue['number']}",
                repository=event.repository,
                issue_number=issue["number"],
                installation_id=event.installation_id,
                after={"mode": rule.mode.value, "labels": rule.when.labels},
                outcome=audit.Outcome.REFUSED,
                reason=refusal,
                delivery=event.delivery,
            )
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
                target_pull=target,
            )
        )
        if isinstance(result, Run):
            log.info("auto-dispatched", extra={"run": result.id, "mode": rule.mode.value})
            started += 1
    return started


async def _refusal(
    rt: Runtime, event: Event, config: RepoConfig, mode: Mode, repository_id: int
) -> str | None:
    """Why the rule must not start a run for this labeler, or None."""
    needed = config.permission_for(mode.value) or Permission.WRITE
    sender = event.sender
    if not sender:
        return "the label was added by no one Dispatch can check"
    client = rt.github.installation(event.installation_id or 0)
    level = await rt.permissions.level(client, event.repository or "", sender)
    if level < needed:
        return f"{sender} has {level.label} permission; a {mode.value} run needs {needed.label}"
    if mode is Mode.IMPLEMENT and config.plans.require_approval:
        plan = await plans.latest(repository_id, event.payload["issue"]["number"])
        if plan is None or plan.state is not PlanState.APPROVED:
            return "implementation waits for an approved plan"
    return None
