"""The missed-delivery sweep: deliveries GitHub failed to hand us while we were down come back,
each once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from app.intake import journal, sweep
from tests.webhooks import example


async def test_missed_deliveries_are_redelivered_once(rt, github, client):
    installation = github.add_installation()
    now = datetime.now(UTC)
    missed = str(uuid.uuid4())
    journaled = str(uuid.uuid4())
    succeeded = str(uuid.uuid4())
    recovered = str(uuid.uuid4())
    payload = example("installation/created")
    payload["installation"]["id"] = installation
    missed_id = github.add_hook_delivery(
        missed, "installation", "created", 502, installation, now - timedelta(minutes=20), payload
    )
    github.add_hook_delivery(journaled, "ping", None, 504, None, now - timedelta(minutes=15), {})
    github.add_hook_delivery(succeeded, "ping", None, 202, None, now - timedelta(minutes=10), {})
    github.add_hook_delivery(recovered, "ping", None, 502, None, now - timedelta(minutes=9), {})
    github.add_hook_delivery(recovered, "ping", None, 200, None, now - timedelta(minutes=8), {})
    github.add_hook_delivery(
        str(uuid.uuid4()), "ping", None, 502, None, now - timedelta(days=2), {}
    )
    await journal.record(journal.Inbound(journaled, "ping", None, None, None, "{}"), handled=False)
    github.set_webhook_target(f"{client.base_url}/webhooks/github")

    first = await sweep.run(rt)
    row = None
    for _ in range(200):  # the fake redelivers in the background, to this very event loop
        if (row := await journal.get(missed)) is not None:
            break
        await asyncio.sleep(0.02)

    assert first["redelivered"] == 1
    assert github.redeliveries == [missed_id]
    assert row is not None and row.event == "installation"

    second = await sweep.run(rt)
    assert second["redelivered"] == 0
    assert github.redeliveries == [missed_id]


async def test_paging_follows_the_cursor(rt, github):
    now = datetime.now(UTC)
    for i in range(250):
        github.add_hook_delivery(
            str(uuid.uuid4()), "ping", None, 502, None, now - timedelta(seconds=i), {}
        )

    result = await sweep.run(rt)

    assert result["redelivered"] == 250
    assert len(github.calls_to("GET", r"^/app/hook/deliveries$")) == 3
