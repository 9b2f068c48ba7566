"""The label state machine: at most one `status/*` and one `priority/*` label per issue, closing
means `status/done`, reopening means `status/ready`.

Every change is targeted (add one label, remove one label) against the live labels re-read from
GitHub, and audited. When two people add two status labels in quick succession, the label added
last wins: a `labeled` event whose label was followed by a newer one in the same family defers to
that newer event. Changes made by Dispatch itself do not trigger these rules again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from githubkit import GitHub

from app.audit import log as audit
from app.events import Event
from app.github import rest
from app.issues.labels import Status, family
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def is_own_change(event: Event, rt: Runtime) -> bool:
    return event.sender == await rt.github.bot_login()


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
) -> bool:
    """Make `status` the issue's only status label. True if anything changed."""
    live = await rest.issue_labels(client, repository, number)
    changed = False
    if status.value not in live:
        await rest.add_label(client, repository, number, status.value)
        await audit.record(
            actor=actor,
            action="label.add",
            target=f"{repository}#{number}",
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
                target=f"{repository}#{number}",
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


# Rooms that give some closed issues another status than `done` (remediation: a fix being
# verified) register a function here: (repository id, issue number) → status or None.
CLOSED_STATUS_RULES: list[Callable[[int, int], Awaitable[Status | None]]] = []


async def on_closed(event: Event, rt: Runtime) -> None:
    repository_id = event.payload["repository"]["id"]
    number = event.payload["issue"]["number"]
    for rule in CLOSED_STATUS_RULES:
        if (status := await rule(repository_id, number)) is not None:
            await _move_on_event(event, rt, status, "issue closed while its fix is verified")
            return
    await _move_on_event(event, rt, Status.DONE, "issue closed")


async def on_reopened(event: Event, rt: Runtime) -> None:
    await _move_on_event(event, rt, Status.READY, "issue reopened")


async def _move_on_event(event: Event, rt: Runtime, status: Status, reason: str) -> None:
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
    )


async def _remove(
    client: GitHub, rt: Runtime, event: Event, number: int, label: str, *, reason: str
) -> None:
    repository = event.repository or ""
    removed = await rest.remove_label(client, repository, number, label)
    await audit.record(
        actor=await rt.github.bot_login(),
        action="label.remove",
        target=f"{repository}#{number}",
        repository=repository,
        issue_number=number,
        installation_id=event.installation_id,
        before={"label": label},
        after={"removed": label} if removed else None,
        outcome=audit.Outcome.DONE if removed else audit.Outcome.SKIPPED,
        reason=reason if removed else f"{reason}; already gone",
        delivery=event.delivery,
    )
