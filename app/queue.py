"""The durable job queue (pgqueuer, in the same Postgres): enqueueing inside the caller's
transaction, and the worker loop that runs jobs and cron schedules.

A job enqueued inside `db.transaction()` commits or vanishes with the caller's writes. Workers on
any number of machines dequeue with `SKIP LOCKED`; a job whose worker died (no heartbeat for
`JOB_HEARTBEAT_SECONDS`) is picked up again by another.

pgqueuer keeps a history of every job (a log row per state change, and per-second statistics);
`prune_history` forgets what is older than QUEUE_HISTORY_RETENTION_DAYS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.errors import RetryRequested
from pgqueuer.models import Job, Schedule
from pgqueuer.queries import Queries
from pgqueuer.types import QueueExecutionMode

from app import jobs
from app.clock import Clock, SystemClock, backoff
from app.db import engine, pruning
from app.github import retry as github_retry

log = logging.getLogger(__name__)

JobFunction = Callable[[dict[str, Any]], Awaitable[None]]
GiveUp = Callable[[dict[str, Any], Exception], Awaitable[None]]
ScheduledFunction = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """A failing job runs again after `base * 2**attempt` seconds (at most `max_wait_seconds`,
    and never sooner than a rate limit asks), `attempts` times in all; then `give_up` (if any)
    gets the payload and the last error, so someone hears about it.

    A job that fails because GitHub is unavailable (5xx, timeouts, rate limits) keeps retrying
    until it is `outage_hours` old on `clock`, however many attempts that takes: an outage
    says nothing about the job, and giving up would leave a command unanswered."""

    attempts: int = 5
    base_seconds: float = 2.0
    give_up: GiveUp | None = None
    max_wait_seconds: float = 900.0
    outage_hours: float = 0.0
    clock: Clock = field(default_factory=SystemClock)

    def next_try(self, attempt: int, exc: BaseException, age: timedelta) -> timedelta | None:
        """The wait before attempt `attempt + 1` after `exc`, or None to give up."""
        outage = github_retry.unavailable(exc) and age < timedelta(hours=self.outage_hours)
        if attempt >= self.attempts and not outage:
            return None
        delay = backoff(attempt, self.base_seconds, self.max_wait_seconds)
        # A rate limit says when it lifts: never retry sooner.
        asked = github_retry.wait_asked(exc, self.clock.now())
        if asked is None:
            asked = getattr(exc, "retry_after", None)  # githubkit's reading of the headers
        if isinstance(asked, timedelta) and asked > delay:
            delay = asked
        return delay


async def enqueue(
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    delay: timedelta | None = None,
    dedupe_key: str | None = None,
    connection: asyncpg.Connection | None = None,
) -> bool:
    """Queue job `name` on the current transaction's connection (or the one given), at the
    name's priority (`jobs.PRIORITIES`). False when `dedupe_key` is already queued or running
    (the existing job will do the work)."""
    body = msgspec.json.encode(payload or {})
    if connection is not None:
        return await _enqueue(connection, name, body, delay, dedupe_key)
    async with engine.connection() as current:
        return await _enqueue(current, name, body, delay, dedupe_key)


async def enqueue_many(
    name: str,
    payloads: list[dict[str, Any]],
    *,
    dedupe_keys: list[str],
    connection: asyncpg.Connection,
    priorities: list[int] | None = None,
) -> None:
    """Queue many jobs `name` in one statement on `connection` (inside its transaction), each at
    its priority in `priorities` (default: the name's); a dedupe key already queued or running
    is skipped."""
    await Queries(AsyncpgDriver(connection)).enqueue(
        [name] * len(payloads),
        [msgspec.json.encode(payload) for payload in payloads],
        priority=priorities or [jobs.PRIORITIES.get(name, 0)] * len(payloads),
        execute_after=[None] * len(payloads),
        dedupe_key=list[str | None](dedupe_keys),
        on_conflict="skip",
    )


def enqueue_from_sql(
    source: str, *, name: str, payload: str, dedupe_key: str, priority: str | None = None
) -> str | None:
    """The CTEs (no WITH keyword, no parameters) that queue job `name` once for every row of
    `source` (a CTE of the same statement), with the SQL expressions `payload` (text, JSON),
    `dedupe_key` and `priority` (default: the name's) over its rows; a dedupe key already queued
    or running is skipped. Lets a caller queue jobs in the same statement as its own writes: one
    round trip, no explicit transaction.
    None if pgqueuer's enqueue statement no longer has the shape this rewrites (callers then use
    `enqueue_many`)."""
    query = Queries(AsyncpgDriver(None)).qbq.build_enqueue_query("skip")  # type: ignore[arg-type]
    query = re.sub(r"--[^\n]*", "", query)
    rows = (
        f"FROM (SELECT {priority or int(jobs.PRIORITIES.get(name, 0))} AS priority, "
        f"'{name}'::text AS entrypoint, convert_to({payload}, 'UTF8') AS payload, "
        "interval '0' AS execute_after, "
        f"{dedupe_key} AS dedupe_key, 'null'::jsonb AS headers, "
        f"row_number() OVER () AS ord FROM {source}) AS t"
    )
    rewritten, count = re.subn(
        r"FROM UNNEST\(.*?\) WITH ORDINALITY AS\s*t\([^)]*\)", rows, query, flags=re.DOTALL
    )
    head, select, _ = rewritten.rpartition("SELECT i.ord")
    ctes = head.strip()
    if count != 1 or not select or "$" in ctes or not ctes.startswith("WITH "):
        return None
    return ctes.removeprefix("WITH ").rstrip().rstrip(",")


async def _enqueue(
    connection: asyncpg.Connection,
    name: str,
    body: bytes,
    delay: timedelta | None,
    dedupe_key: str | None,
) -> bool:
    ids = await Queries(AsyncpgDriver(connection)).enqueue(
        name,
        body,
        priority=jobs.PRIORITIES.get(name, 0),
        execute_after=delay,
        dedupe_key=dedupe_key,
        on_conflict="skip",
    )
    return ids[0] is not None


# pgqueuer's history tables (its defaults; Dispatch sets no PGQUEUER_PREFIX).
_HISTORY = {
    "queue log": "pgqueuer_log",
    "queue statistics": "pgqueuer_statistics",
}


async def prune_history(
    cutoff: datetime, *, batch: int, dry_run: bool = False
) -> list[pruning.Pruned]:
    """Forget the job history (log rows and statistics) from before `cutoff`. Jobs still queued
    or running live in another table and are never touched."""
    pruned = []
    for what, table in _HISTORY.items():
        if dry_run:
            rows, size = await pruning.estimate(
                f"SELECT count(*), sum(pg_column_size({table}.*)) FROM {table} WHERE created < $1",
                cutoff,
            )
            pruned.append(pruning.Pruned(what, rows, size, cutoff))
            continue
        statement = (
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE created < $2 "
            "ORDER BY created LIMIT $1 FOR UPDATE SKIP LOCKED)"
        )
        rows = await pruning.in_batches(statement, cutoff, batch=batch)
        pruned.append(pruning.Pruned(what, rows, None, cutoff))
    return pruned


async def oldest_history() -> datetime | None:
    async with engine.connection() as connection:
        return await connection.fetchval("SELECT min(created) FROM pgqueuer_log")


@dataclass
class JobRegistry:
    """Job names bound to functions, and cron schedules; filled by the composition root."""

    jobs: dict[str, tuple[JobFunction, RetryPolicy]] = field(default_factory=dict)
    schedules: dict[str, tuple[str, ScheduledFunction]] = field(default_factory=dict)

    def job(self, name: str, function: JobFunction, retry: RetryPolicy | None = None) -> None:
        self.jobs[name] = (function, retry or RetryPolicy())

    def schedule(self, name: str, cron: str, function: ScheduledFunction) -> None:
        self.schedules[name] = (cron, function)


# Heartbeats older than this are forgotten (a worker that stopped long ago tells nothing).
HEARTBEAT_KEPT = timedelta(days=1)


async def beat(worker: str, started_at: datetime) -> None:
    """Record that `worker` is alive now (and forget long-silent workers)."""
    async with engine.connection() as connection:
        await connection.execute(
            "INSERT INTO worker_heartbeat (worker, host, pid, started_at, seen_at) "
            "VALUES ($1, $2, $3, $4, now()) "
            "ON CONFLICT (worker) DO UPDATE SET seen_at = now()",
            worker,
            socket.gethostname(),
            os.getpid(),
            started_at,
        )
        await connection.execute(
            "DELETE FROM worker_heartbeat WHERE seen_at < now() - $1::interval", HEARTBEAT_KEPT
        )


@dataclass(frozen=True)
class Heartbeat:
    worker: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    age_seconds: float


async def latest_heartbeat() -> Heartbeat | None:
    """The most recent heartbeat of any worker, with its age by the database's clock."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT worker, host, pid, started_at, seen_at, "
            "extract(epoch FROM now() - seen_at)::float AS age_seconds "
            "FROM worker_heartbeat ORDER BY seen_at DESC LIMIT 1"
        )
    return Heartbeat(**dict(row)) if row else None


class Worker:
    """Runs registered jobs until stopped. `drain=True` stops once the queue is empty (tests,
    one-shot maintenance).

    `stop(grace)` takes no new jobs and gives the running ones `grace` seconds; those still
    running then are cancelled and handed back to the queue (without using up an attempt), to
    run again at once on whichever worker is up. Scheduled jobs cut short run at their next time.
    """

    def __init__(
        self,
        registry: JobRegistry,
        *,
        concurrency: int,
        heartbeat_seconds: float,
        poll_seconds: float = 5.0,
    ):
        self.registry = registry
        self.concurrency = concurrency
        self.heartbeat = timedelta(seconds=heartbeat_seconds)
        self.poll = timedelta(seconds=poll_seconds)
        self.running = asyncio.Event()
        self._pgq: PgQueuer | None = None
        self._connection: asyncpg.Connection | None = None
        self._jobs = _RunningJobs()
        self._stopping = False
        self._deadline: tuple[float, asyncio.Handle] | None = None

    async def run(self, *, drain: bool = False, schedules: bool = True) -> None:
        self._connection = await asyncpg.connect(engine.dsn())
        pgq = self._pgq = PgQueuer(AsyncpgDriver(self._connection))
        for name, (job, retry) in self.registry.jobs.items():
            pgq.entrypoint(name)(_job_runner(name, job, retry, self._jobs))
        if schedules and not drain:
            for name, (cron, scheduled) in self.registry.schedules.items():
                pgq.schedule(name, cron)(_schedule_runner(name, scheduled, self._jobs))
        if self._stopping:  # stopped while connecting
            pgq.shutdown.set()
        self.running.set()
        beating = None if drain else asyncio.create_task(self._heartbeat())
        try:
            if drain:
                await pgq.qm.run(
                    mode=QueueExecutionMode.drain,
                    batch_size=self.concurrency,
                    heartbeat_timeout=self.heartbeat,
                    dequeue_timeout=timedelta(seconds=0.2),
                )
            else:
                await pgq.run(
                    batch_size=self.concurrency,
                    max_concurrent_tasks=self.concurrency * 2,
                    heartbeat_timeout=self.heartbeat,
                    dequeue_timeout=self.poll,
                )
        finally:
            self.running.clear()
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating
            if self._deadline is not None:
                self._deadline[1].cancel()
            if not self._connection.is_closed():
                await self._connection.close()

    async def _heartbeat(self) -> None:
        """Tell the database this worker is alive, every heartbeat period (`dispatch doctor`
        reads it); a failed beat is tried again at the next one."""
        name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        started = datetime.now(UTC)
        while True:
            try:
                await beat(name, started)
            except (OSError, RuntimeError, asyncpg.PostgresError) as exc:
                log.warning("worker heartbeat not recorded", extra={"error": str(exc)})
            await asyncio.sleep(self.heartbeat.total_seconds())

    def stop(self, grace: float | None = None) -> None:
        """Take no new jobs; running ones get `grace` seconds (None: as long as they take), then
        go back to the queue. A second call can only shorten the wait (`grace=0`: now)."""
        self._stopping = True
        self._jobs.stopping = True
        if self._pgq is not None:
            self._pgq.shutdown.set()
        if grace is None:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + max(grace, 0.0)
        if self._deadline is not None:
            if self._deadline[0] <= when:
                return
            self._deadline[1].cancel()
        self._deadline = (when, loop.call_at(when, self._jobs.hand_back))


class _RunningJobs:
    """The tasks running a job or a schedule right now, so a stopping worker can cut them short."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        # Stopping: a job dequeued from now on (the queue may hand out one more as it stops)
        # goes back untouched. Handing back: running ones are cancelled and go back too.
        self.stopping = False
        self.handing_back = False

    def hand_back(self) -> None:
        self.handing_back = True
        if self.tasks:
            log.info("handing running jobs back to the queue", extra={"jobs": len(self.tasks)})
        for task in self.tasks:
            task.cancel()

    @contextlib.contextmanager
    def track(self) -> Iterator[asyncio.Task[Any]]:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            yield task
        finally:
            self.tasks.discard(task)


class JobFailed(Exception):
    """A job gave up after its retries: the queue records it as failed (`pgqueuer_log`)."""

    def __init__(self, name: str, attempts: int) -> None:
        super().__init__(f"job {name} failed after {attempts} attempts")


async def _handed_back(job: Job, name: str) -> RetryRequested:
    """Back to the queue, due now, without counting as an attempt."""
    await _not_an_attempt(job)
    log.info("job handed back to the queue", extra={"job": name})
    return RetryRequested(delay=timedelta(0), reason="worker stopping")


def _job_runner(name: str, function: JobFunction, retry: RetryPolicy, running: _RunningJobs):  # type: ignore[no-untyped-def]
    async def run(job: Job) -> None:
        payload = msgspec.json.decode(job.payload) if job.payload else {}
        try:
            with running.track() as task:
                if running.stopping:  # dequeued just as the worker stopped: not started
                    raise await _handed_back(job, name)
                try:
                    await function(payload)
                except asyncio.CancelledError:
                    if not running.handing_back:
                        raise
                    task.uncancel()
                    raise await _handed_back(job, name) from None
        except RetryRequested:
            raise
        except Exception as exc:
            attempt = job.attempts + 1
            delay = retry.next_try(attempt, exc, retry.clock.now() - job.created)
            if delay is not None:
                log.warning(
                    "job failed, will retry",
                    extra={
                        "job": name,
                        "attempt": attempt,
                        "retry_in_seconds": delay.total_seconds(),
                        "error": github_retry.describe(exc),
                    },
                )
                raise RetryRequested(delay=delay, reason=type(exc).__name__) from exc
            log.error(
                "job failed for good",
                extra={"job": name, "attempt": attempt, "error": github_retry.describe(exc)},
            )
            if retry.give_up is not None:
                await retry.give_up(payload, exc)
            raise JobFailed(name, attempt) from exc

    run.__name__ = run.__qualname__ = f"job:{name}"
    return run


async def _not_an_attempt(job: Job) -> None:
    """pgqueuer counts the retry that hands a job back as an attempt, but the job did not fail.
    Taken off while the job is still picked by this worker, so no other one sees the count."""
    try:
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE pgqueuer SET attempts = attempts - 1 WHERE id = $1", int(job.id)
            )
    except (OSError, RuntimeError, asyncpg.PostgresError) as exc:
        log.warning("a job handed back keeps one attempt more", extra={"error": str(exc)})


def _schedule_runner(name: str, function: ScheduledFunction, running: _RunningJobs):  # type: ignore[no-untyped-def]
    async def run(schedule: Schedule) -> None:
        try:
            with running.track() as task:
                if running.handing_back:
                    return
                try:
                    await function()
                except asyncio.CancelledError:
                    if not running.handing_back:
                        raise
                    task.uncancel()
                    log.info(
                        "scheduled job cut short, it runs at its next time", extra={"job": name}
                    )
        except Exception:
            log.exception("scheduled job failed", extra={"job": name})

    run.__name__ = run.__qualname__ = f"schedule:{name}"
    return run
