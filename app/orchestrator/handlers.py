"""Webhooks about mission issues: the `dispatch/mission` label starts a mission (the issue's
title and body are the request) when whoever added it has the permission `ask` needs; an edit
of a mission issue's title or body makes its proposal stale and plans again; a closed issue
releases the mission items that waited for it. Dispatch's own edits and labels change nothing."""

from __future__ import annotations

from app.audit import log as audit
from app.events import Event, Router, is_own_change
from app.github import rest
from app.github.permissions import Permission
from app.issues import repo_config
from app.issues.labels import Signal
from app.orchestrator import asking, execution, missions, review
from app.orchestrator.missions import Source
from app.runtime import Runtime

router = Router()


@router.on("issues", "labeled", "opened")
async def mission_label(event: Event, rt: Runtime) -> None:
    if event.installation_id is None or event.repository is None:
        return
    issue = event.payload["issue"]
    labels = {label["name"] for label in issue.get("labels") or []}
    if (
        event.action == "labeled"
        and (event.payload.get("label") or {}).get("name") != Signal.MISSION
    ):
        return
    if Signal.MISSION not in labels and event.action == "opened":
        return
    if issue.get("state") == "closed" or await is_own_change(event, rt):
        return
    repository_id = event.payload["repository"]["id"]
    if await missions.live_for_issue(repository_id, issue["number"]) is not None:
        return  # the label of a mission already under way (GitHub sends opened and labeled)
    sender = event.sender
    client = rt.github.installation(event.installation_id)
    loaded = await repo_config.load(rt, event.installation_id, event.repository)
    needed = loaded.config.permission_for("ask") or Permission.WRITE
    level = (
        await rt.permissions.level(client, event.repository, sender) if sender else Permission.NONE
    )
    if level < needed or loaded.error:
        why = (
            f"`{repo_config.CONFIG_PATH}` is invalid"
            if loaded.error
            else f"{sender or 'no one'} has {level.label} permission; a mission needs "
            f"{needed.label}"
        )
        await audit.record(
            actor=sender or "unknown",
            action="mission.label",
            target=f"{event.repository}#{issue['number']}",
            repository=event.repository,
            issue_number=issue["number"],
            installation_id=event.installation_id,
            outcome=audit.Outcome.REFUSED,
            reason=why,
            delivery=event.delivery,
        )
        # Strangers (issue forms can add labels for them) get no reply; people who may label do.
        if level >= Permission.TRIAGE:
            await _say(
                rt, event, issue["number"], f"The `dispatch/mission` label starts nothing: {why}."
            )
        return
    await rest.react(
        client, event.repository, rest.ReactionTarget("issue", issue["number"]), "eyes"
    )
    title = issue.get("title") or ""
    body = issue.get("body") or ""
    started = await asking.start(
        rt,
        installation_id=event.installation_id,
        repository=event.repository,
        repository_id=repository_id,
        issue_number=issue["number"],
        source=Source.LABEL,
        request=f"{title}\n\n{body}".strip(),
        requested_by=sender,
    )
    if isinstance(started, asking.Refusal):
        if await missions.live_for_issue(repository_id, issue["number"]) is not None:
            return  # `opened` and `labeled` of one new issue, handled at the same time
        await _say(rt, event, issue["number"], f"No mission was started: {started.reason}")


async def _say(rt: Runtime, event: Event, number: int, text: str) -> None:
    client = rt.github.installation(event.installation_id or 0)
    await rest.upsert_marked_comment(
        client,
        event.repository or "",
        number,
        f"mission-label:{number}",
        text,
        bot_login=await rt.github.bot_login(),
    )


@router.on("issues", "edited")
async def mission_issue_edited(event: Event, rt: Runtime) -> None:
    changes = event.payload.get("changes") or {}
    if not ({"title", "body"} & set(changes)) or await is_own_change(event, rt):
        return
    issue = event.payload["issue"]
    await review.on_issue_edited(
        rt,
        event.payload["repository"]["id"],
        issue["number"],
        issue.get("title") or "",
        issue.get("body") or "",
    )


@router.on("issues", "closed")
async def dependency_closed(event: Event, rt: Runtime) -> None:
    if event.installation_id is None:
        return
    await execution.on_issue_closed(
        rt, event.payload["repository"]["id"], event.payload["issue"]["number"]
    )
