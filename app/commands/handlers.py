"""Every text a person writes becomes a generic comment whose commands are recorded."""

from __future__ import annotations

from app.commands import runner
from app.events import Event, Router
from app.runtime import Runtime

router = Router()


@router.on("issues", "opened")
@router.on("issue_comment", "created")
@router.on("pull_request_review", "submitted")
@router.on("pull_request_review_comment", "created")
async def commands_in_text(event: Event, rt: Runtime) -> None:
    await runner.record(event, rt)
