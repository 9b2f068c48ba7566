"""Issues opened or edited are (re)embedded in a job."""

from __future__ import annotations

from app.events import Event, router
from app.runtime import Runtime
from app.search import indexing


@router.on("issues", "opened", "edited")
async def embed_later(event: Event, rt: Runtime) -> None:
    await indexing.on_issue_changed(event, rt)
