"""Webhook handlers of the claims room: a person removing an agent's label, or closing the
issue (or the pull request of a `pr_follow_up` claim), ends its claim."""

from __future__ import annotations

from app.claims import revocation
from app.events import Event, Router
from app.runtime import Runtime

router = Router()


@router.on("issues", "unlabeled")
async def agent_label_removed(event: Event, rt: Runtime) -> None:
    await revocation.on_unlabeled(event, rt)


@router.on("issues", "closed")
async def claimed_issue_closed(event: Event, rt: Runtime) -> None:
    await revocation.on_closed(event, rt)


@router.on("pull_request", "unlabeled")
async def agent_label_removed_from_pull(event: Event, rt: Runtime) -> None:
    await revocation.on_unlabeled(event, rt)


@router.on("pull_request", "closed")
async def claimed_pull_closed(event: Event, rt: Runtime) -> None:
    await revocation.on_closed(event, rt)
