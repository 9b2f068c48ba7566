"""The worker runs each delivery through its handlers exactly once: failures are retried with
backoff and end as `failed` with the error; a failed attempt leaves no writes behind."""

from __future__ import annotations

import uuid

import pytest

from app.audit import log as audit
from app.db import engine
from app.events import Router
from app.intake import journal
from tests.harness import drain


@pytest.fixture
def router():
    """The router the worker runs deliveries through in these tests."""
    return Router()


@pytest.fixture
def handler(router):
    """Registers a handler for the made-up event `test_event`."""
    return router.on("test_event", "poke")


async def journal_poke() -> str:
    guid = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(guid, "test_event", "poke", None, "o/r", '{"action": "poke"}'),
        handled=True,
    )
    return guid


async def audit_count() -> int:
    async with engine.connection() as connection:
        return await connection.fetchval("SELECT count(*) FROM audit_log")


@pytest.mark.expect_failed
async def test_failing_handler_is_retried_then_marked_failed(rt, handler, router):
    calls = []

    @handler
    async def always_fails(event, rt):
        calls.append(event.delivery)
        raise RuntimeError("the answer is 42")

    guid = await journal_poke()
    await drain(rt, router=router)

    row = await journal.get(guid)
    assert row.state == "failed"
    assert row.attempts == rt.settings.delivery_max_attempts
    assert "RuntimeError: the answer is 42" in row.last_error
    assert len(calls) == rt.settings.delivery_max_attempts
    assert [r.guid for r in await journal.recent(failed_only=True)] == [guid]


async def test_a_failed_attempt_leaves_no_writes(rt, handler, router):
    attempts = []

    @handler
    async def fails_once_after_writing(event, rt):
        await audit.record(actor="t", action="poke", target="x", delivery=event.delivery)
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("transient")

    guid = await journal_poke()
    await drain(rt, router=router)

    row = await journal.get(guid)
    assert (row.state, row.attempts, row.last_error) == ("processed", 2, None)
    assert await audit_count() == 1


async def test_replay_runs_a_processed_delivery_again(rt, handler, router):
    seen = []

    @handler
    async def count(event, rt):
        seen.append(event.delivery)

    guid = await journal_poke()
    await drain(rt, router=router)
    assert await journal.replay(guid) is True
    await drain(rt, router=router)

    assert seen == [guid, guid]
    assert (await journal.get(guid)).state == "processed"
    assert await journal.replay("no-such-guid") is False
