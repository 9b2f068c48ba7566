"""One prune pass covers every area on its own window: the scheduled job runs it, queue history
and (when asked) the audit trail go too, and a failing step does not stop the others."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

from app import jobs
from app.agents import spawn_decisions
from app.audit import log as audit
from app.db import engine
from app.events import Router
from app.intake import journal
from app.retention import service as retention
from app.worker import job_registry
from tests.harness import drain


async def test_the_prune_job_runs_on_its_schedule(rt):
    registry = job_registry(rt, Router())

    assert registry.schedules[jobs.PRUNE][0] == rt.settings.prune_schedule == "*/15 * * * *"


async def count(table: str) -> int:
    async with engine.connection() as connection:
        return await connection.fetchval(f"SELECT count(*) FROM {table}")


async def test_queue_history_goes_after_its_window(rt):
    for _ in range(4):
        await journal.record(
            journal.Inbound(str(uuid.uuid4()), "test_event", "poke", None, "o/r", "{}"),
            handled=True,
        )
    await drain(rt, router=Router())
    history = await count("pgqueuer_log")
    assert history >= 8  # queued, picked, done … per job
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE pgqueuer_log SET created = created - interval '7 days 1 minute' "
            "WHERE id IN (SELECT id FROM pgqueuer_log ORDER BY id LIMIT 5)"
        )

    report = await retention.prune(rt)

    assert await count("pgqueuer_log") == history - 5
    assert next(p.rows for p in report.pruned if p.what == "queue log") == 5


async def test_the_audit_trail_is_kept_unless_a_window_is_set(rt):
    for action in ("old", "new"):
        await audit.record(actor="t", action=action, target="x")
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE audit_log SET at = at - interval '400 days' WHERE action = 'old'"
        )

    await retention.prune(rt)
    assert await count("audit_log") == 2

    yearly = dataclasses.replace(
        rt, settings=rt.settings.model_copy(update={"audit_retention_days": 365})
    )
    report = await retention.prune(yearly)
    assert [row["action"] for row in await audit.entries()] == ["new"]
    assert next(p.rows for p in report.pruned if p.what == "audit entries") == 1


async def test_a_failing_step_does_not_stop_the_others(rt, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(spawn_decisions, "prune_decisions", broken)
    guid = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(
            guid,
            "test_event",
            "poke",
            None,
            "o/r",
            "{}",
            received_at=rt.clock.now() - timedelta(days=15),
        ),
        handled=False,
    )

    report = await retention.prune(rt)

    assert report.failed == ["spawn decisions"]
    assert (await journal.get(guid)).payload_dropped_at is not None
    assert "queue log" in {p.what for p in report.pruned}


async def test_storage_metrics_are_measured_at_most_once_a_minute(rt, monkeypatch):
    metrics = retention.StorageMetrics(rt.clock)
    await metrics.refresh()

    async def must_not_run():
        raise AssertionError("measured again within the minute")

    monkeypatch.setattr(retention, "table_sizes", must_not_run)
    await metrics.refresh()
