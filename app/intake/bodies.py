"""Reading webhook bodies before anyone is authenticated: a sender must say how much it sends
(GitHub, Grafana and Sentry all do), nothing over the limit is read at all, and only a few large
bodies are read at once, so unauthenticated senders cannot fill the server's memory while the
signature over the whole body is still unchecked."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from litestar import Request, Response

from app.web.errors import error

# Bodies above this many bytes wait for one of LARGE_AT_ONCE places before they are read.
LARGE = 1024 * 1024
LARGE_AT_ONCE = 4
# The places, one set per event loop (a server runs one; a semaphore belongs to its loop).
_places: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
_reading = 0


def reading_large() -> int:
    """How many large bodies are being read now (never more than LARGE_AT_ONCE)."""
    return _reading


async def read(request: Request, limit: int) -> bytes | Response[dict[str, Any]]:
    """The body, or the error answer: 411 without a length, 413 over `limit`."""
    global _reading
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return error(411, "send the body with a Content-Length header")
    size = int(declared)
    if size > limit:
        return error(413, f"request body too large: {size} bytes, the limit is {limit}")
    if size <= LARGE:
        return await request.body()
    loop = asyncio.get_running_loop()
    places = _places.get(loop)
    if places is None:
        places = _places[loop] = asyncio.Semaphore(LARGE_AT_ONCE)
    async with places:
        _reading += 1
        try:
            return await request.body()
        finally:
            _reading -= 1
