"""Webhook handlers of the claims room: a person removing an agent's label, or closing the
issue, ends its claim."""

from __future__ import annotations

from app.claims import service
from app.events import Event, Router
from app.runtime import Runtime

router = Router()


@router.on("issues", "unlabeled")
async def agent_label_removed(event: Event, rt: Runtime) -> None:
    await service.on_unlabeled(event, rt)


@router.on("issues", "closed")
async def claimed_issue_closed(event: Event, rt: Runtime) -> None:
    await service.on_closed(event, rt)
