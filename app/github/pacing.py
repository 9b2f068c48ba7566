"""Pacing of content-creating requests per installation, under GitHub's secondary rate limits
(80 a minute, 500 an hour for requests that create content), the way octokit's throttling plugin
does it: such requests go one at a time and only wait when a window is full, so an isolated
request is never delayed. Reads are not paced (githubkit's own concurrency cap still applies).

The windows live in this process; with several replicas each paces its own share.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from githubkit.throttling import BaseThrottler, LocalThrottler

_WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
# Endpoints that create content in GitHub's sense: comments, reactions, labels, issues, reviews.
_CONTENT_SEGMENTS = frozenset({"issues", "comments", "reactions", "labels", "pulls", "reviews"})


def creates_content(request: httpx.Request) -> bool:
    if request.method not in _WRITE_METHODS:
        return False
    segments = request.url.path.split("/")
    # In /repos/{owner}/{repo}/... the owner and repository are names, not endpoints: a
    # repository called `issues` or `labels` must not make its workflow dispatches content.
    if "repos" in segments:
        start = segments.index("repos")
        segments = segments[:start] + segments[start + 3 :]
    return any(segment in _CONTENT_SEGMENTS for segment in segments)


class SlidingWindow:
    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.stamps: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        while self.stamps and now - self.stamps[0] >= self.seconds:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return self.seconds - (now - self.stamps[0])

    def record(self, now: float) -> None:
        self.stamps.append(now)


class ContentPacer(BaseThrottler):
    def __init__(self, per_minute: int, per_hour: int, max_concurrency: int = 100) -> None:
        self.windows = (SlidingWindow(per_minute, 60.0), SlidingWindow(per_hour, 3600.0))
        self._reads = LocalThrottler(max_concurrency)
        self._write_lock: asyncio.Lock | None = None

    @property
    def waits(self) -> float:
        now = time.monotonic()
        return max(window.wait_time(now) for window in self.windows)

    @contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        with self._reads.acquire(request):
            yield

    @asynccontextmanager
    async def async_acquire(self, request: httpx.Request) -> AsyncGenerator[None, Any]:
        if not creates_content(request):
            async with self._reads.async_acquire(request):
                yield
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            # Sleeping until the oldest stamp leaves its window; nothing else can free a slot.
            while (delay := self.waits) > 0:  # noqa: ASYNC110
                await asyncio.sleep(delay)
            now = time.monotonic()
            for window in self.windows:
                window.record(now)
            yield
