"""One GitHub budget per installation, shared by every Dispatch process through PostgreSQL.

GitHub lets an installation create about 80 pieces of content a minute and 500 an hour (its
secondary rate limits: comments, reactions, labels, issues, reviews) and answers more with 403 +
`retry-after`; repeated abuse can get the App blocked. N web replicas and M workers must share
that budget, so the pacing lives in the database, not in a process:

- **Content writes take a slot.** A write reserves the earliest moment at which neither the
  minute nor the hour window is full: `github_pace` has one row per installation, locked
  (`FOR UPDATE`) for the two statements that read the installation's recent slots in
  `github_content_slot` and add one, in a short transaction of its own (never the caller's), which
  commits before anyone waits. Slots are handed out in order, so each rolling window holds at
  most its limit; an isolated write finds room and goes at once, a burst gets slots spread into
  the future and each write sleeps until its own, outside any transaction. A window counts as a
  minute (an hour) and `MARGIN` more: a request reaches GitHub a little after its slot (an
  installation token to fetch first, a busy event loop), and the next one may be quicker.
- **A limit seen once pauses every process.** A response that says GitHub is limiting the
  installation (`retry-after`, or `x-ratelimit-remaining: 0` with `x-ratelimit-reset`) sets
  `github_pace.paused_until`; every request of that installation, in every process, reads too,
  waits for it. A write that slept until its slot looks again before it goes.
- **Long waits are not sat out.** A pause or a slot further away than
  `GITHUB_MAX_RETRY_WAIT_SECONDS` raises `GitHubPaused`, whose `retry_after` the job queue honours:
  the job runs again later instead of holding a worker.

Reads are not paced (githubkit's concurrency cap applies), and within one process an
installation's writes still go one at a time (as GitHub asks); a write takes its slot before its
turn, so that the database round trip overlaps the write ahead of it, and takes a new one if its
turn came more than `STALE_SLOT` after the slot. While an installation's windows are far from
full, writes of a process waiting together take up to `BATCH` slots in one round trip (a spare
one is spent within `STALE_SLOT`; a limit heard from GitHub drops it). The database clock is the
one clock, so replicas on different machines agree on what a minute is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from githubkit.exception import GitHubException
from githubkit.throttling import BaseThrottler, LocalThrottler

from app.db import engine

log = logging.getLogger(__name__)

_WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
# Endpoints that create content in GitHub's sense: comments, reactions, labels, issues, reviews.
_CONTENT_SEGMENTS = frozenset({"issues", "comments", "reactions", "labels", "pulls", "reviews"})

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# A write reaches GitHub up to STALE_SLOT after its slot, plus the time its request takes to
# get there (an installation token fetched first, a busy event loop, a loaded machine): the
# rest of the margin covers that.
MARGIN = timedelta(seconds=4)
# A slot whose write waited longer than this for its turn in the process is taken again.
STALE_SLOT = timedelta(seconds=1)
# Writes of one process waiting for slots together take up to this many in one round trip, while
# both windows have room for twice as many more; a spare slot is kept for at most STALE_SLOT and
# counts all the same if it goes unused (the budget only gets safer).
BATCH = 4
# GitHub: "if you exceed a secondary rate limit and there is no retry-after, wait a minute".
SECONDARY_DEFAULT_WAIT = 60


_AT_ONCE: ContextVar[bool] = ContextVar("github_writes_at_once", default=False)


@contextmanager
def at_once() -> Iterator[None]:
    """Content writes in this block go now or not at all: one that would have to wait for a
    slot raises GitHubPaused instead (for writes worth making only at once, which something
    durable makes later otherwise, like a command's 👀)."""
    token = _AT_ONCE.set(True)
    try:
        yield
    finally:
        _AT_ONCE.reset(token)


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


def _is_token_request(request: httpx.Request) -> bool:
    """The installation token request is made with the App's JWT: its limits are the App's."""
    return request.url.path.endswith("/access_tokens")


class GitHubPaused(GitHubException):
    """A request not sent: GitHub limits this installation (or its content budget is spent) for
    longer than a job should wait. `retry_after` says when to try again (the job queue waits
    that long before running the job again)."""

    def __init__(self, installation_id: int, retry_after: timedelta, reason: str) -> None:
        super().__init__(
            f"GitHub requests of installation {installation_id} are paused for "
            f"{retry_after.total_seconds():.0f} s ({reason})"
        )
        self.installation_id = installation_id
        self.retry_after = retry_after
        self.reason = reason


# Slots are taken in order (a new one is never before the last), so "the k-th most recent slot
# is more than a window old" is exactly "the window ending at the new slot holds fewer than k".
_RESERVE = """
WITH clock AS (
    SELECT coalesce($2::timestamptz, clock_timestamp()) AS now
), next AS (
    SELECT greatest(
        (SELECT now FROM clock),
        $3::timestamptz,
        (SELECT max(at) FROM github_content_slot WHERE installation_id = $1),
        (SELECT at FROM github_content_slot WHERE installation_id = $1
            ORDER BY at DESC OFFSET $4 - 1 LIMIT 1) + $6::interval,
        (SELECT at FROM github_content_slot WHERE installation_id = $1
            ORDER BY at DESC OFFSET $5 - 1 LIMIT 1) + $7::interval
    ) AS at
), taken AS (
    INSERT INTO github_content_slot (installation_id, at)
    SELECT $1, at FROM next WHERE at <= (SELECT now FROM clock) + $8::interval
    RETURNING at
), pruned AS (
    DELETE FROM github_content_slot
    WHERE installation_id = $1 AND at < (SELECT now FROM clock) - $7::interval
)
SELECT (SELECT now FROM clock) AS now, (SELECT at FROM next) AS at,
    EXISTS (SELECT 1 FROM taken) AS taken
"""

# $8 slots at once, all now, only while nothing is paused or paced (no slot in the future) and
# both windows have room for twice as many more; otherwise none (and `_RESERVE` takes one).
_RESERVE_BATCH = """
WITH clock AS (
    SELECT coalesce($2::timestamptz, clock_timestamp()) AS now
), room AS (
    SELECT
        coalesce($3::timestamptz <= now, true)
        AND coalesce((SELECT max(at) FROM github_content_slot WHERE installation_id = $1) <= now,
            true)
        AND (SELECT count(*) FROM github_content_slot
             WHERE installation_id = $1 AND at > now - $6::interval) + 2 * $8 <= $4
        AND (SELECT count(*) FROM github_content_slot
             WHERE installation_id = $1 AND at > now - $7::interval) + 2 * $8 <= $5 AS free,
        now
    FROM clock
), taken AS (
    INSERT INTO github_content_slot (installation_id, at)
    SELECT $1, room.now FROM room, generate_series(1, $8) WHERE room.free
    RETURNING at
), pruned AS (
    DELETE FROM github_content_slot
    WHERE installation_id = $1 AND at < (SELECT now FROM clock) - $7::interval
)
SELECT count(*) FROM taken
"""

_PAUSE = """
INSERT INTO github_pace (installation_id, paused_until, pause_reason)
VALUES ($1, coalesce($2::timestamptz, coalesce($3::timestamptz, clock_timestamp())
    + make_interval(secs => $4::float8)), $5)
ON CONFLICT (installation_id) DO UPDATE SET
    pause_reason = CASE WHEN github_pace.paused_until >= EXCLUDED.paused_until
        THEN github_pace.pause_reason ELSE EXCLUDED.pause_reason END,
    paused_until = greatest(github_pace.paused_until, EXCLUDED.paused_until)
RETURNING paused_until
"""


class InstallationPacer(BaseThrottler):
    """The githubkit throttler of one installation's client (`app/github/clients.py`), and
    what its transport tells about GitHub's answers (`observe`)."""

    def __init__(
        self,
        installation_id: int,
        *,
        per_minute: int,
        per_hour: int,
        max_wait: float,
        max_concurrency: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.installation_id = installation_id
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.max_wait = timedelta(seconds=max_wait)
        # None: the database's clock (production); tests pass a clock they move.
        self.clock = clock
        self._reads = LocalThrottler(max_concurrency)
        self._write_lock: asyncio.Lock | None = None
        self._sleeping = 0  # writes of this process sleeping until their slots
        self._spare: list[float] = []  # monotonic times at which spare slots were taken
        self._reserving: asyncio.Lock | None = None  # one reservation at a time per process
        self._wanting = 0  # writes of this process waiting for a slot

    # ------------------------------------------------------------------ githubkit's throttler

    @contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        # Dispatch only makes async calls; a sync one would bypass the shared budget.
        raise RuntimeError("GitHub calls of an installation are async only (shared pacing)")
        yield  # pragma: no cover

    @asynccontextmanager
    async def async_acquire(self, request: httpx.Request) -> AsyncGenerator[None, Any]:
        if not creates_content(request):
            await self._sit_out_pause()
            async with self._reads.async_acquire(request):
                yield
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        if _AT_ONCE.get() and self._sleeping:
            # A write ahead of this one waits for a slot: so would this one.
            raise GitHubPaused(self.installation_id, timedelta(seconds=1), "no slot free now")
        # The slot is taken before queueing for the process's turn, so the database round trip
        # of the next write overlaps the HTTP call of this one; a slot that went stale while its
        # write waited for its turn (a burst) is taken again, so sends stay close to their slots.
        reached = await self._take_slot()
        async with self._write_lock:
            while time.monotonic() - reached > STALE_SLOT.total_seconds():
                reached = await self._take_slot()
            yield

    async def _take_slot(self) -> float:
        """Reserve a content slot (a spare one taken less than STALE_SLOT ago, if any) and sleep
        until it; the monotonic time when it was reached."""
        if self._reserving is None:
            self._reserving = asyncio.Lock()
        self._wanting += 1
        try:
            async with self._reserving:
                while self._spare:
                    taken = self._spare.pop(0)
                    if time.monotonic() - taken <= STALE_SLOT.total_seconds():
                        return taken
                # For this write and, when the windows allow, the ones waiting behind it.
                wait = await self.reserve(min(self._wanting, BATCH))
        finally:
            self._wanting -= 1
        while True:
            if wait <= 0:
                return time.monotonic()
            if wait >= 1:
                log.info(
                    "github content write paced",
                    extra={"installation": self.installation_id, "wait_seconds": wait},
                )
            self._sleeping += 1
            try:
                await asyncio.sleep(wait)
            finally:
                self._sleeping -= 1
            # A pause another process saw while this write slept: a slot inside it is lost,
            # take a new one after it.
            if await self.paused_for() <= 0:
                return time.monotonic()
            wait = await self.reserve()

    # ------------------------------------------------------------------ the shared state

    def _now(self) -> datetime | None:
        return self.clock() if self.clock is not None else None

    async def reserve(self, wanted: int = 1) -> float:
        """Take this installation's next content slot; the seconds until it (0: now). Inside
        `at_once()`, only a slot free now. `wanted` > 1: take that many at once if both windows
        have plenty of room (the spare ones are kept for this process's next writes)."""
        max_wait = timedelta() if _AT_ONCE.get() else self.max_wait
        async with engine.autonomous_connection() as connection, connection.transaction():
            row = await self._locked_pace(connection)
            # "Now" is read once the lock is held: the slot of the process that held it before
            # is then in the past or the present, never in this one's future.
            batch = wanted > 1 and await connection.fetchval(
                _RESERVE_BATCH,
                self.installation_id,
                self._now(),
                row["paused_until"],
                self.per_minute,
                self.per_hour,
                MINUTE + MARGIN,
                HOUR + MARGIN,
                wanted,
            )
            if batch:
                self._spare += [time.monotonic()] * (batch - 1)
                return 0.0
            slot = await connection.fetchrow(
                _RESERVE,
                self.installation_id,
                self._now(),
                row["paused_until"],
                self.per_minute,
                self.per_hour,
                MINUTE + MARGIN,
                HOUR + MARGIN,
                max_wait,
            )
        now = slot["now"]
        wait = slot["at"] - now
        if not slot["taken"]:
            paused = row["paused_until"] is not None and row["paused_until"] >= slot["at"]
            if paused:
                raise GitHubPaused(self.installation_id, wait, row["pause_reason"] or "paused")
            # Come back when a slot is within reach again.
            retry_after = max(wait - max_wait, timedelta(seconds=1))
            raise GitHubPaused(self.installation_id, retry_after, "content budget spent")
        return max(wait.total_seconds(), 0.0)

    async def _locked_pace(self, connection: Any) -> Any:
        for _ in range(2):
            row = await connection.fetchrow(
                "SELECT paused_until, pause_reason FROM github_pace WHERE installation_id = $1 "
                "FOR UPDATE",
                self.installation_id,
            )
            if row is not None:
                return row
            await connection.execute(
                "INSERT INTO github_pace (installation_id) VALUES ($1) ON CONFLICT DO NOTHING",
                self.installation_id,
            )
        raise RuntimeError("github_pace row vanished")  # pragma: no cover

    async def paused_for(self) -> float:
        """Seconds until this installation's pause ends (0: not paused)."""
        async with engine.autonomous_connection() as connection:
            seconds = await connection.fetchval(
                "SELECT extract(epoch FROM paused_until - coalesce($2::timestamptz, "
                "clock_timestamp())) FROM github_pace WHERE installation_id = $1",
                self.installation_id,
                self._now(),
            )
        return max(float(seconds or 0), 0.0)

    async def _sit_out_pause(self) -> None:
        wait = await self.paused_for()
        if wait <= 0:
            return
        if wait > self.max_wait.total_seconds():
            async with engine.autonomous_connection() as connection:
                reason = await connection.fetchval(
                    "SELECT pause_reason FROM github_pace WHERE installation_id = $1",
                    self.installation_id,
                )
            raise GitHubPaused(self.installation_id, timedelta(seconds=wait), reason or "paused")
        await asyncio.sleep(wait)

    async def pause(
        self, *, seconds: float | None = None, until: datetime | None = None, reason: str
    ) -> None:
        """Pause every process's requests of this installation for `seconds` (from the
        database's now) or until `until`; a longer pause already set stays."""
        self._spare.clear()  # slots taken before the pause are lost
        async with engine.autonomous_connection() as connection:
            until = await connection.fetchval(
                _PAUSE, self.installation_id, until, self._now(), float(seconds or 0), reason
            )
        log.warning(
            "github limits this installation: every process pauses",
            extra={"installation": self.installation_id, "until": str(until), "reason": reason},
        )

    async def observe(self, request: httpx.Request, response: httpx.Response) -> None:
        """What a response says about the installation's limits (called by the transport)."""
        if _is_token_request(request):
            return
        headers = response.headers
        try:
            if response.status_code in (403, 429) and "retry-after" in headers:
                await self.pause(
                    seconds=max(int(headers["retry-after"]), 1), reason="secondary rate limit"
                )
            elif headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
                reset = datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), UTC)
                await self.pause(until=reset, reason="primary rate limit used up")
            elif response.status_code in (403, 429):
                await response.aread()
                if "secondary rate limit" in response.text.lower():
                    await self.pause(seconds=SECONDARY_DEFAULT_WAIT, reason="secondary rate limit")
        except Exception as exc:
            # The answer itself still goes back to the caller; the next one may pause us.
            log.warning(
                "could not record GitHub's rate limit",
                extra={"installation": self.installation_id, "error": repr(exc)},
            )
