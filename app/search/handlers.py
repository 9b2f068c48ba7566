"""Issues opened or edited are (re)embedded in a job; closing, reopening, deleting or
transferring one changes whether it is offered as a neighbour."""

from __future__ import annotations

from app.events import Event, Router
from app.runtime import Runtime
from app.search import indexing

router = Router()


@router.on("issues", "opened", "edited")
async def embed_later(event: Event, rt: Runtime) -> None:
    await indexing.on_issue_changed(event, rt)


@router.on("issues", "closed", "reopened", "deleted", "transferred")
async def listing_changed(event: Event, rt: Runtime) -> None:
    await indexing.on_state_changed(event)
