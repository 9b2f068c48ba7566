"""Webhook handlers that keep the installations and repositories tables true."""

from __future__ import annotations

from app import jobs, queue
from app.audit import log as audit
from app.events import Event, Router
from app.github.repo import Repo
from app.installations import service
from app.runtime import Runtime

router = Router()


@router.on("installation", "created", "new_permissions_accepted", "unsuspend", "suspend")
async def installation_changed(event: Event, rt: Runtime) -> None:
    installation = event.payload["installation"]
    await service.upsert_installation(installation)
    if event.action == "suspend":
        await service.set_suspended(installation["id"], True)
    elif event.action == "unsuspend":
        await service.set_suspended(installation["id"], False)
    if event.action == "created":
        repositories = event.payload.get("repositories") or []
        await service.add_repositories(installation["id"], repositories)
        await _onboard(installation["id"], repositories)
    await audit.record(
        actor=event.sender or "github",
        action=f"installation.{event.action}",
        target=f"installation/{installation['id']}",
        installation_id=installation["id"],
        after={"account": (installation.get("account") or {}).get("login")},
        delivery=event.delivery,
    )


@router.on("installation", "deleted")
async def installation_deleted(event: Event, rt: Runtime) -> None:
    installation_id = event.payload["installation"]["id"]
    await service.mark_deleted(installation_id)
    await audit.record(
        actor=event.sender or "github",
        action="installation.deleted",
        target=f"installation/{installation_id}",
        installation_id=installation_id,
        delivery=event.delivery,
    )


@router.on("installation_repositories", "added", "removed")
async def repositories_changed(event: Event, rt: Runtime) -> None:
    installation = event.payload["installation"]
    # The installation row may not exist yet if `installation.created` was lost; upsert it.
    await service.upsert_installation(installation)
    added = event.payload.get("repositories_added") or []
    removed = event.payload.get("repositories_removed") or []
    await service.add_repositories(installation["id"], added)
    await service.remove_repositories(installation["id"], removed)
    await _onboard(installation["id"], added)
    await audit.record(
        actor=event.sender or "github",
        action=f"installation_repositories.{event.action}",
        target=f"installation/{installation['id']}",
        installation_id=installation["id"],
        after={
            "added": [r["full_name"] for r in added],
            "removed": [r["full_name"] for r in removed],
        },
        delivery=event.delivery,
    )


async def _onboard(installation_id: int, repositories: list[dict]) -> None:
    """Labels, issue backfill and config for each new repository, each in its own job."""
    for repo in repositories:
        await queue.enqueue(
            jobs.ONBOARD_REPOSITORY,
            {"installation_id": installation_id, "repository": repo["full_name"]},
            dedupe_key=f"onboard:{installation_id}:{Repo.parse(repo['full_name']).key}",
        )
