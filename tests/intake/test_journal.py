"""The journal stores bodies compressed and reads both them and the jsonb payloads of rows
journaled before bodies were compressed."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from app.db import engine
from app.events import Router
from app.intake import journal
from tests.harness import drain
from tests.webhooks import example


async def test_a_body_is_stored_compressed_and_read_back_as_sent(rt):
    payload = example("pull_request/opened")
    body = json.dumps(payload)
    guid = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(guid, "pull_request", "opened", 1, "o/r", body), handled=False
    )

    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT body, payload, octet_length(body) AS size FROM delivery WHERE guid = $1", guid
        )

    assert row["payload"] is None
    assert row["size"] < len(body.encode()) / 5
    assert journal.decode(row["body"]) == payload


async def test_a_delivery_journaled_before_compression_is_still_processed(rt):
    seen = []
    router = Router()

    @router.on("issues", "opened")
    async def remember(event, rt):
        seen.append(event.payload)

    guid = str(uuid.uuid4())
    async with engine.connection() as connection:
        # The row as the journal wrote it before: jsonb payload, no body.
        await connection.execute(
            "INSERT INTO delivery (guid, event, action, state, payload) "
            "VALUES ($1, 'issues', 'opened', 'queued', $2::text::jsonb)",
            guid,
            json.dumps({"action": "opened", "issue": {"number": 7}}),
        )
    await journal.replay(guid)
    await drain(rt, router=router)

    assert seen == [{"action": "opened", "issue": {"number": 7}}]
    assert (await journal.get(guid)).state == "processed"


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "transaction"])
async def test_deliveries_arriving_together_are_each_journaled_and_processed_once(
    rt, monkeypatch, one_statement
):
    if not one_statement:  # what runs if pgqueuer's enqueue statement changes shape
        monkeypatch.setattr(journal, "_INSERT_AND_QUEUE", None)
    else:
        assert journal._INSERT_AND_QUEUE is not None
    seen: list[str] = []
    router = Router()

    @router.on("issues", "opened")
    async def remember(event, rt):
        seen.append(event.delivery)

    guids = [str(uuid.uuid4()) for _ in range(40)]
    body = json.dumps(example("issues/opened"))
    # Every guid sent twice at the same moment (a redelivery racing the original): the batches
    # they share must journal one row and one job per guid, and call exactly one copy new.
    answers = await asyncio.gather(
        *(
            journal.record(journal.Inbound(guid, "issues", "opened", 1, "o/r", body), handled=True)
            for guid in guids + guids
        )
    )
    assert answers[: len(guids)] == [True] * len(guids)
    assert answers[len(guids) :] == [False] * len(guids)
    # Sent again later: a duplicate, nothing queued.
    assert not await journal.record(
        journal.Inbound(guids[0], "issues", "opened", 1, "o/r", body), handled=True
    )

    await drain(rt, router=router)

    assert sorted(seen) == sorted(guids)
    states = {guid: (await journal.get(guid)).state for guid in guids}
    assert set(states.values()) == {"processed"}
