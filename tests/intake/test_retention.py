"""The journal keeps payloads DELIVERY_RETENTION_DAYS and rows DELIVERY_ROW_RETENTION_DAYS, by the
app's clock; failed and queued deliveries keep everything; a redelivered guid stays a duplicate
while GitHub can redeliver it; and pruning never holds up intake."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest

from app.db import engine
from app.events import Router
from app.intake import journal
from app.intake import retention as intake_retention
from app.retention import service as retention
from tests.harness import drain
from tests.webhooks import example, signed

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


async def journal_at(rt, age: timedelta, *, event: str = "check_suite", handled: bool = False):
    """A real example payload journaled `age` ago by the app's clock; its guid."""
    guid = str(uuid.uuid4())
    body, _ = signed("x", event, example("check_suite/requested"))
    await journal.record(
        journal.Inbound(
            guid, event, "requested", 1, "o/r", body.decode(), received_at=rt.clock.now() - age
        ),
        handled=handled,
    )
    return guid


async def stored(guid: str) -> tuple[bool, bool]:
    """(row kept, payload kept)."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT body IS NOT NULL AS body, payload_dropped_at FROM delivery WHERE guid = $1",
            guid,
        )
    if row is None:
        return False, False
    assert row["body"] == (row["payload_dropped_at"] is None)
    return True, row["body"]


async def test_payloads_and_rows_go_exactly_when_their_windows_end(rt):
    kept_payload = await journal_at(rt, 14 * DAY - MINUTE)
    dropped_payload = await journal_at(rt, 14 * DAY + MINUTE)
    kept_row = await journal_at(rt, 90 * DAY - MINUTE)
    deleted_row = await journal_at(rt, 90 * DAY + MINUTE)

    report = await retention.prune(rt)

    assert await stored(kept_payload) == (True, True)
    assert await stored(dropped_payload) == (True, False)
    assert await stored(kept_row) == (True, False)
    assert await stored(deleted_row) == (False, False)
    counts = {p.what: p.rows for p in report.pruned}
    assert counts["delivery payloads"] == 3 and counts["delivery rows"] == 1
    row = await journal.get(dropped_payload)
    assert (row.event, row.state) == ("check_suite", "ignored")
    assert row.payload_dropped_at is not None


async def test_days_pass_on_the_app_clock(rt, clock, deliver, github):
    first = (await deliver("check_suite", example("check_suite/requested"))).json()["delivery"]
    clock.advance(days=10)
    second = (await deliver("check_suite", example("check_suite/requested"))).json()["delivery"]

    clock.advance(days=4, minutes=1)
    await retention.prune(rt)
    assert await stored(first) == (True, False)
    assert await stored(second) == (True, True)

    clock.advance(days=76)
    await retention.prune(rt)
    assert await stored(first) == (False, False)
    assert await stored(second) == (True, False)


async def test_a_redelivered_guid_is_a_duplicate_until_its_row_goes(rt, clock, client, github):
    body, headers = signed(github.webhook_secret, "check_suite", example("check_suite/requested"))
    assert (await client.post("/webhooks/github", content=body, headers=headers)).status_code == 202

    clock.advance(days=89)
    await retention.prune(rt)
    again = await client.post("/webhooks/github", content=body, headers=headers)

    assert again.status_code == 200 and again.json()["duplicate"] is True


@pytest.fixture
def router():
    return Router()


async def test_failed_and_queued_deliveries_keep_everything_until_settled(rt, router):
    outcome = {"fail": True}

    @router.on("check_suite", "requested")
    async def flaky(event, rt):
        if outcome["fail"]:
            raise RuntimeError("GitHub is down")

    failed = await journal_at(rt, 100 * DAY, handled=True)
    discarded = await journal_at(rt, 100 * DAY, handled=True)
    await drain(rt, router=router)
    assert (await journal.get(failed)).state == "failed"
    assert await journal.discard(discarded) == "failed"
    queued = await journal_at(rt, 100 * DAY, handled=True)  # its job not run yet

    await retention.prune(rt)
    assert await stored(failed) == (True, True)
    assert await stored(queued) == (True, True)
    assert await stored(discarded) == (False, False)  # discarded: ordinary windows

    outcome["fail"] = False
    assert await journal.replay(failed)
    await drain(rt, router=router)
    assert (await journal.get(failed)).state == "processed"
    await retention.prune(rt)
    assert await stored(failed) == (False, False)


async def test_a_dropped_payload_cannot_be_replayed(rt):
    guid = await journal_at(rt, 20 * DAY)
    await retention.prune(rt)

    with pytest.raises(journal.PayloadDropped, match="cannot be replayed"):
        await journal.replay(guid)
    assert await journal.discard(guid) == "ignored"  # only failed deliveries are discarded


async def test_dry_run_counts_and_changes_nothing(rt):
    guids = [await journal_at(rt, 20 * DAY) for _ in range(3)]

    report = await retention.prune(rt, dry_run=True)

    payloads = next(p for p in report.pruned if p.what == "delivery payloads")
    assert payloads.rows == 3 and payloads.bytes > 3 * 1000
    assert [await stored(guid) for guid in guids] == [(True, True)] * 3


SLOW_BATCHES = """
CREATE TABLE prune_batch (txid bigint PRIMARY KEY);
CREATE FUNCTION slow_payload_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO prune_batch VALUES (txid_current()) ON CONFLICT DO NOTHING;
    PERFORM pg_sleep(0.2);
    RETURN NEW;
END $$;
CREATE TRIGGER slow_payload_drop BEFORE UPDATE ON delivery FOR EACH ROW
    WHEN (OLD.payload_dropped_at IS NULL AND NEW.payload_dropped_at IS NOT NULL)
    EXECUTE FUNCTION slow_payload_drop();
"""


async def test_intake_journals_while_a_prune_batch_is_held_open(rt, client, github):
    old = [await journal_at(rt, 20 * DAY) for _ in range(20)]
    async with engine.connection() as connection:
        await connection.execute(SLOW_BATCHES)  # each batch of 5 now stays open for 1 s
    now = rt.clock.now()
    prune = asyncio.create_task(intake_retention.drop_payloads(now - 14 * DAY, now, batch=5))
    async with engine.connection() as connection:
        # Wait until a batch is mid-flight: its transaction holds locks on `delivery`.
        modes: list = []
        while not modes:
            modes = await connection.fetch(
                "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.relation = 'delivery'::regclass AND a.query LIKE '%payload_dropped_at%' "
                "AND a.pid <> pg_backend_pid()"
            )
            await asyncio.sleep(0.01)

    latencies = []
    for _ in range(3):
        body, headers = signed(
            github.webhook_secret, "check_suite", example("check_suite/requested")
        )
        started = time.perf_counter()
        response = await client.post("/webhooks/github", content=body, headers=headers)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 202
        assert await journal.get(headers["x-github-delivery"]) is not None
    in_flight = not prune.done()
    assert (await prune).rows == 20

    assert in_flight, "the webhooks were not posted while the prune ran"
    # None of these conflicts with the RowExclusiveLock an INSERT takes.
    assert {row["mode"] for row in modes} <= {"RowShareLock", "RowExclusiveLock", "AccessShareLock"}
    assert max(latencies) < 0.5  # a batch stays open 1 s: intake did not wait for one
    async with engine.connection() as connection:
        batches = await connection.fetchval("SELECT count(*) FROM prune_batch")
    assert batches == 4  # 20 payloads, 5 per batch, each batch its own transaction
    assert [await stored(guid) for guid in old] == [(True, False)] * 20


async def test_a_delivery_being_processed_is_skipped_not_waited_for(rt):
    busy = await journal_at(rt, 20 * DAY)
    idle = await journal_at(rt, 20 * DAY)
    now = rt.clock.now()
    async with engine.connection() as holder, holder.transaction():
        # What a delivery job does while its handlers run.
        await holder.execute("SELECT 1 FROM delivery WHERE guid = $1 FOR UPDATE", busy)
        started = time.perf_counter()
        pruned = await asyncio.wait_for(
            intake_retention.drop_payloads(now - 14 * DAY, now, batch=10), timeout=5
        )
        took = time.perf_counter() - started

    assert pruned.rows == 1 and took < 1
    assert await stored(busy) == (True, True) and await stored(idle) == (True, False)
    await intake_retention.drop_payloads(now - 14 * DAY, now, batch=10)
    assert await stored(busy) == (True, False)
