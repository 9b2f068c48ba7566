"""The label state machine: at most one `status/*` and one `priority/*` label per issue, closing
means `status/done`, reopening means `status/ready`.

Every change is targeted (add one label, remove one label) against the live labels re-read from
GitHub, and audited. When two people add two status labels in quick succession, the label added
last wins: a `labeled` event whose label was followed by a newer one in the same family defers to
that newer event. Changes made by Dispatch itself do not trigger these rules again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from githubkit import GitHub

from app.audit import log as audit
from app.events import Event, is_own_change
from app.github import rest
from app.issues.labels import Status, family
from app.runtime import Runtime

log = logging.getLogger(__name__)

# The audit action of a status label a person added (Dispatch's own are `label.add`).
STATUS_SET = "status.set"


async def enforce_exclusive(event: Event, rt: Runtime) -> None:
    """On `issues.labeled`: a second label of an exclusive family removes the older ones."""
    label = event.payload["label"]["name"]
    prefix = family(label)
    if prefix is None or event.installation_id is None or await is_own_change(event, rt):
        return
    issue = event.payload["issue"]
    repository = event.repository or ""
    client = rt.github.installation(event.installation_id)
    live = await rest.issue_labels(client, repository, issue["number"])
    if label not in live:
        return  # removed since; nothing to enforce for it
    at_event = {item["name"] for item in issue.get("labels") or []}
    same_family = [name for name in live if family(name) == prefix and name != label]
    if any(name not in at_event for name in same_family):
        return  # a newer label of this family arrived after this event; its event decides
    for older in same_family:
        await _remove(client, rt, event, issue["number"], older, reason=f"{label} replaces it")


async def record_status_label(event: Event, rt: Runtime) -> None:
    """On `issues.labeled`: a person gave the issue a status. Dispatch's own moves are audited
    where they are made (`move_to`); recording people's too keeps every status an issue had in
    the audit trail, which is what the customer portal's timeline shows."""
    label = event.payload["label"]["name"]
    if label not in Status._value2member_map_ or await is_own_change(event, rt):
        return
    repository = event.repository or ""
    number = event.payload["issue"]["number"]
    await audit.record(
        actor=event.sender or "unknown",
        action=STATUS_SET,
        repository=repository,
        issue_number=number,
        installation_id=event.installation_id,
        after={"status": label},
        reason="label added on GitHub",
        delivery=event.delivery,
    )


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    status: Status
    by_dispatch: bool


async def status_history(repository: str, number: int) -> list[StatusChange]:
    """Every status the issue was given, oldest first, from the audit trail: Dispatch's moves
    and the status labels people added."""
    changes = []
    for entry in await audit.for_issue(repository, number, ["label.add", STATUS_SET]):
        after = entry["after"] if isinstance(entry["after"], dict) else {}
        name = after.get("added") if entry["action"] == "label.add" else after.get("status")
        if entry["outcome"] != audit.Outcome.DONE or not isinstance(name, str):
            continue
        if name not in Status._value2member_map_:
            continue
        changes.append(StatusChange(entry["at"], Status(name), entry["action"] == "label.add"))
    return changes


async def move_to(
    client: GitHub,
    rt: Runtime,
    repository: str,
    number: int,
    status: Status,
    *,
    actor: str,
    reason: str,
    delivery: str | None = None,
    installation_id: int | None = None,
    unless: Status | None = None,
) -> bool:
    """Make `status` the issue's only status label (unless its status is `unless`). True if
    anything changed."""
    live = await rest.issue_labels(client, repository, number)
    if unless is not None and unless.value in live:
        return False
    changed = False
    if status.value not in live:
        await rest.add_label(client, repository, number, status.value)
        await audit.record(
            actor=actor,
            action="label.add",
            repository=repository,
            issue_number=number,
            installation_id=installation_id,
            before=live,
            after={"added": status.value},
            reason=reason,
            delivery=delivery,
        )
        changed = True
    for other in live:
        if family(other) != "status/" or other == status.value:
            continue
        if await rest.remove_label(client, repository, number, other):
            await audit.record(
                actor=actor,
                action="label.remove",
                repository=repository,
                issue_number=number,
                installation_id=installation_id,
                before=live,
                after={"removed": other},
                reason=reason,
                delivery=delivery,
            )
            changed = True
    return changed


async def on_closed(event: Event, rt: Runtime) -> None:
    # An issue closed while its fix is verified (the fix's PR closed it) stays `status/verifying`
    # until the verification decides; the remediation room moves it on from there.
    await _move_on_event(event, rt, Status.DONE, "issue closed", unless=Status.VERIFYING)


async def on_reopened(event: Event, rt: Runtime) -> None:
    await _move_on_event(event, rt, Status.READY, "issue reopened")


async def _move_on_event(
    event: Event, rt: Runtime, status: Status, reason: str, *, unless: Status | None = None
) -> None:
    if event.installation_id is None or await is_own_change(event, rt):
        return
    client = rt.github.installation(event.installation_id)
    await move_to(
        client,
        rt,
        event.repository or "",
        event.payload["issue"]["number"],
        status,
        actor=await rt.github.bot_login(),
        reason=f"{reason} by {event.sender}",
        delivery=event.delivery,
        installation_id=event.installation_id,
        unless=unless,
    )


async def _remove(
    client: GitHub, rt: Runtime, event: Event, number: int, label: str, *, reason: str
) -> None:
    repository = event.repository or ""
    removed = await rest.remove_label(client, repository, number, label)
    await audit.record(
        actor=await rt.github.bot_login(),
        action="label.remove",
        repository=repository,
        issue_number=number,
        installation_id=event.installation_id,
        before={"label": label},
        after={"removed": label} if removed else None,
        outcome=audit.Outcome.DONE if removed else audit.Outcome.SKIPPED,
        reason=reason if removed else f"{reason}; already gone",
        delivery=event.delivery,
    )
