"""The missed-delivery sweep: how Dispatch recovers from its own downtime.

GitHub keeps every delivery attempt for three days. The sweep reads the App's deliveries since the
last sweep (newest first, following the cursor), and asks GitHub to redeliver each guid that never
had a successful attempt and is not in our journal. Deliveries stranded in the journal (queued with
no job) are queued again too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from app.clock import parse_timestamp
from app.db import bookmarks
from app.github import rest
from app.github.clients import GitHubAppNotConfigured
from app.intake import journal
from app.runtime import Runtime

log = logging.getLogger(__name__)

SWEEP_NAME = "github-deliveries"
FIRST_LOOKBACK = timedelta(hours=1)
# Deliveries still in flight when the last sweep ran are read again.
OVERLAP = timedelta(minutes=5)


async def run(rt: Runtime) -> dict[str, int]:
    if not rt.credentials.configured:
        return {"redelivered": 0, "requeued": 0}
    started = rt.clock.now()
    since = await bookmarks.last_run(SWEEP_NAME) or (started - FIRST_LOOKBACK)
    try:
        attempts = await _attempts_since(rt, since - OVERLAP)
    except GitHubAppNotConfigured:
        return {"redelivered": 0, "requeued": 0}
    missed = await _missed(attempts)
    for guid, delivery_id in missed.items():
        await rest.redeliver(rt.github.app(), delivery_id)
        log.info("asked GitHub to redeliver", extra={"guid": guid, "hook_delivery": delivery_id})
    requeued = await journal.requeue_stranded()
    await bookmarks.save_run(SWEEP_NAME, started)
    return {"redelivered": len(missed), "requeued": requeued}


async def _attempts_since(rt: Runtime, since: datetime) -> list[dict[str, Any]]:
    client = rt.github.app()
    attempts: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await rest.webhook_deliveries(client, cursor)
        attempts += page.attempts
        oldest = min((_parse(a["delivered_at"]) for a in page.attempts), default=None)
        cursor = page.next_cursor
        if not page.attempts or cursor is None or (oldest is not None and oldest < since):
            break
    return [a for a in attempts if _parse(a["delivered_at"]) >= since]


async def _missed(attempts: list[dict[str, Any]]) -> dict[str, int]:
    """guid → the id of its latest attempt, for guids with no 2xx attempt and no journal row."""
    latest: dict[str, dict[str, Any]] = {}
    succeeded: set[str] = set()
    for attempt in attempts:
        guid = attempt["guid"]
        if 200 <= int(attempt.get("status_code") or 0) < 300:
            succeeded.add(guid)
        if guid not in latest or _parse(attempt["delivered_at"]) > _parse(
            latest[guid]["delivered_at"]
        ):
            latest[guid] = attempt
    candidates = [guid for guid in latest if guid not in succeeded]
    if not candidates:
        return {}
    journaled = await journal.known_guids(candidates)
    return {guid: latest[guid]["id"] for guid in candidates if guid not in journaled}


def _parse(value: str) -> datetime:
    parsed = parse_timestamp(value)
    assert parsed is not None  # GitHub always sends delivered_at
    return parsed
