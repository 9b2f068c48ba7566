"""`GET /commands/{id}/reply`: the whole text of a reply Dispatch had to cut to fit GitHub's
comment limit, behind the signed link the cut reply ends with."""

from __future__ import annotations

from litestar import Response, get
from litestar.exceptions import NotFoundException

from app.commands import answers
from app.runtime import Runtime

# Plain text that renders nothing, and a link that is not passed on.
_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


@get("/commands/{command_id:int}/reply", include_in_schema=False)
async def full_reply(rt: Runtime, command_id: int, token: str | None = None) -> Response[str]:
    reply = await answers.full_reply(rt, command_id, token or "")
    if reply is None:
        raise NotFoundException("no such reply")
    return Response(reply, media_type="text/plain; charset=utf-8", headers=_HEADERS)


routes = [full_reply]
