"""Reading webhook bodies before anyone is authenticated: a sender must say how much it sends
(GitHub, Grafana and Sentry all do), nothing over the limit is read at all, and only a few large
bodies are read at once, so unauthenticated senders cannot fill the server's memory while the
signature over the whole body is still unchecked."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response

from app.web.errors import error

# Bodies above this many bytes wait for one of LARGE_AT_ONCE places before they are read.
LARGE = 1024 * 1024
LARGE_AT_ONCE = 4
_large_reads: asyncio.Semaphore | None = None


async def read(request: Request, limit: int) -> bytes | Response[dict[str, Any]]:
    """The body, or the error answer: 411 without a length, 413 over `limit`."""
    global _large_reads
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return error(411, "send the body with a Content-Length header")
    size = int(declared)
    if size > limit:
        return error(413, f"request body too large: {size} bytes, the limit is {limit}")
    if size <= LARGE:
        return await request.body()
    if _large_reads is None:
        _large_reads = asyncio.Semaphore(LARGE_AT_ONCE)
    async with _large_reads:
        return await request.body()
