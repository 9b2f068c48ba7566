"""Stopping a worker: it takes no new job, a running job that ends within the grace is done, and
one still running at the end of it goes back to the queue, due at once and with its attempts
untouched."""

from __future__ import annotations

import asyncio
import time

from app import queue
from app.db import engine
from app.queue import JobRegistry, Worker


async def _job_rows(name: str) -> list[dict]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT status, attempts, execute_after <= now() AS due FROM pgqueuer "
            "WHERE entrypoint = $1",
            name,
        )
    return [dict(row) for row in rows]


async def _running_worker(registry: JobRegistry) -> tuple[Worker, asyncio.Task[None]]:
    worker = Worker(registry, concurrency=2, heartbeat_seconds=2)
    task = asyncio.create_task(worker.run(schedules=False))
    await asyncio.wait_for(worker.running.wait(), 10)
    return worker, task


async def test_a_job_running_past_the_grace_goes_back_to_the_queue(database):
    started = asyncio.Event()

    async def slow(payload: dict) -> None:
        started.set()
        await asyncio.sleep(60)

    registry = JobRegistry()
    registry.job("test_slow", slow)
    worker, task = await _running_worker(registry)
    await queue.enqueue("test_slow", {"n": 1})
    await asyncio.wait_for(started.wait(), 10)

    began = time.monotonic()
    worker.stop(grace=0.3)
    await asyncio.wait_for(task, 10)

    assert time.monotonic() - began < 3
    assert await _job_rows("test_slow") == [{"status": "queued", "attempts": 0, "due": True}]


async def test_a_job_ending_within_the_grace_is_done_and_no_new_one_starts(database):
    started = asyncio.Event()
    ran: list[int] = []

    async def short(payload: dict) -> None:
        started.set()
        await asyncio.sleep(0.5)
        ran.append(payload["n"])

    registry = JobRegistry()
    registry.job("test_short", short)
    worker, task = await _running_worker(registry)
    await queue.enqueue("test_short", {"n": 1})
    await asyncio.wait_for(started.wait(), 10)

    worker.stop(grace=10)
    await queue.enqueue("test_short", {"n": 2})
    await asyncio.wait_for(task, 10)

    assert ran == [1]
    assert await _job_rows("test_short") == [{"status": "queued", "attempts": 0, "due": True}]


async def test_a_second_stop_shortens_the_grace(database):
    started = asyncio.Event()

    async def slow(payload: dict) -> None:
        started.set()
        await asyncio.sleep(60)

    registry = JobRegistry()
    registry.job("test_slow", slow)
    worker, task = await _running_worker(registry)
    await queue.enqueue("test_slow", {"n": 1})
    await asyncio.wait_for(started.wait(), 10)

    worker.stop(grace=30)
    await asyncio.sleep(0.2)
    assert not task.done()
    worker.stop(grace=0)
    await asyncio.wait_for(task, 5)

    assert await _job_rows("test_slow") == [{"status": "queued", "attempts": 0, "due": True}]
