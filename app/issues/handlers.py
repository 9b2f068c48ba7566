"""Webhook handlers of the issues room: keep the cache current, apply the label rules, refresh
the repository config when a push touches it."""

from __future__ import annotations

from app.events import Event, Router
from app.issues import cache, repo_config, state
from app.runtime import Runtime

router = Router()

ISSUE_CHANGES = (
    "opened",
    "edited",
    "labeled",
    "unlabeled",
    "closed",
    "reopened",
    "assigned",
    "unassigned",
    "milestoned",
    "demilestoned",
    "pinned",
    "unpinned",
    "locked",
    "unlocked",
)


@router.on("issues", *ISSUE_CHANGES)
async def cache_issue(event: Event, rt: Runtime) -> None:
    if event.installation_id is None:
        return
    await cache.store(event.installation_id, event.payload["repository"], event.payload["issue"])


@router.on("issues", "deleted")
async def forget_issue(event: Event, rt: Runtime) -> None:
    await cache.mark_deleted(event.payload["repository"]["id"], event.payload["issue"]["number"])


@router.on("issues", "transferred")
async def move_issue(event: Event, rt: Runtime) -> None:
    await cache.mark_deleted(event.payload["repository"]["id"], event.payload["issue"]["number"])
    changes = event.payload.get("changes") or {}
    if event.installation_id is not None and "new_issue" in changes:
        await cache.store(event.installation_id, changes["new_repository"], changes["new_issue"])


@router.on("issues", "labeled")
async def one_label_per_family(event: Event, rt: Runtime) -> None:
    await state.enforce_exclusive(event, rt)


@router.on("issues", "labeled")
async def status_history(event: Event, rt: Runtime) -> None:
    await state.record_status_label(event, rt)


@router.on("issues", "closed")
async def closed_means_done(event: Event, rt: Runtime) -> None:
    await state.on_closed(event, rt)


@router.on("issues", "reopened")
async def reopened_means_ready(event: Event, rt: Runtime) -> None:
    await state.on_reopened(event, rt)


@router.on("push")
async def config_changed(event: Event, rt: Runtime) -> None:
    if event.installation_id is None or not repo_config.push_touches_config(event.payload):
        return
    await repo_config.refresh(rt, event.installation_id, event.repository or "")
