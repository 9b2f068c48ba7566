"""The delivery journal: every verified inbound event is stored before anything acts on it.

`record()` stores a delivery and queues its processing in one transaction; a guid seen before is
reported as a duplicate and queues nothing. The journal is also what `dispatch deliveries` lists,
replays and discards.

The body is stored as sent, zlib-compressed (`body`): GitHub's JSON shrinks to an eighth that way,
half of what Postgres's own compression of a jsonb column keeps. Rows journaled before that keep
their jsonb `payload`; `decode()` reads either. Old payloads are dropped by
`app/intake/retention.py`, which leaves the row (and so the guid's deduplication) in place.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from app import jobs, queue
from app.db import engine

# zlib level 6 (its default): ~0.2 ms for a 20 KB payload; level 9 saves 1% more for twice that.
COMPRESSION_LEVEL = 6


class DeliveryState(StrEnum):
    QUEUED = "queued"
    PROCESSED = "processed"
    FAILED = "failed"
    IGNORED = "ignored"
    DISCARDED = "discarded"


@dataclass(frozen=True)
class Inbound:
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    body: str
    source: str = "github"
    # When it arrived by the app's clock (retention windows are measured on it); None: now().
    received_at: datetime | None = None


_INSERT = """
INSERT INTO delivery (guid, source, event, action, installation_id, repository, state, body,
    received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now()))
ON CONFLICT (guid) DO NOTHING
RETURNING id
"""


def encode(body: str) -> bytes:
    """A webhook body as the journal stores it."""
    return zlib.compress(body.encode(), COMPRESSION_LEVEL)


def decode(body: bytes | None, legacy: Any = None) -> Any:
    """The payload of a journal row (`body`, or the jsonb `payload` of rows journaled before
    bodies were compressed); None once it has been dropped."""
    if body is not None:
        return msgspec.json.decode(zlib.decompress(body))
    return legacy


async def record(inbound: Inbound, *, handled: bool) -> bool:
    """Journal `inbound` (and queue it when some handler wants it). False if already journaled."""
    state = DeliveryState.QUEUED if handled else DeliveryState.IGNORED
    body = inbound.body
    if "\\u0000" in body:
        # Postgres text (and jsonb) refuses NUL, which pasted issue text can carry and handlers
        # copy into text columns.
        body = body.replace("\\u0000", "\\ufffd")
    stored = encode(body)  # before taking a connection: intake's pool is small
    async with engine.intake_connection() as connection, connection.transaction():
        inserted = await connection.fetchval(
            _INSERT,
            inbound.guid,
            inbound.source,
            inbound.event,
            inbound.action,
            inbound.installation_id,
            inbound.repository,
            state,
            stored,
            inbound.received_at,
        )
        if inserted is None:
            return False
        if handled:
            await queue.enqueue(
                jobs.PROCESS_DELIVERY,
                {"guid": inbound.guid},
                dedupe_key=f"delivery:{inbound.guid}",
                connection=connection,
            )
    return True


@dataclass(frozen=True)
class DeliveryRow:
    guid: str
    source: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    state: str
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None
    payload_dropped_at: datetime | None


_COLUMNS = (
    "guid, source, event, action, installation_id, repository, state, attempts, last_error, "
    "received_at, processed_at, payload_dropped_at"
)


async def recent(*, failed_only: bool = False, limit: int = 50) -> list[DeliveryRow]:
    """The newest deliveries; `failed_only`: those that failed for good, and those still
    failing (queued again after an error, e.g. while GitHub is down)."""
    where = (
        f"WHERE state = '{DeliveryState.FAILED}' "
        f"OR (state = '{DeliveryState.QUEUED}' AND last_error IS NOT NULL)"
        if failed_only
        else ""
    )
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM delivery {where} ORDER BY received_at DESC LIMIT $1", limit
        )
    return [DeliveryRow(**dict(row)) for row in rows]


async def get(guid: str) -> DeliveryRow | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM delivery WHERE guid = $1", guid)
    return DeliveryRow(**dict(row)) if row else None


async def known_guids(guids: list[str]) -> set[str]:
    async with engine.connection() as connection:
        rows = await connection.fetch("SELECT guid FROM delivery WHERE guid = ANY($1)", guids)
    return {row["guid"] for row in rows}


class PayloadDropped(Exception):
    """The delivery's payload is past DELIVERY_RETENTION_DAYS and gone: it cannot run again."""

    def __init__(self, guid: str, dropped_at: datetime) -> None:
        super().__init__(
            f"the payload of {guid} was dropped on {dropped_at:%Y-%m-%d} "
            "(DELIVERY_RETENTION_DAYS); it cannot be replayed"
        )


async def replay(guid: str) -> bool:
    """Run a journaled delivery again from the start. False if the guid is unknown; raises
    PayloadDropped if its payload is past retention."""
    async with engine.transaction(), engine.connection() as connection:
        dropped = await connection.fetchrow(
            "SELECT payload_dropped_at FROM delivery WHERE guid = $1 FOR UPDATE", guid
        )
        if dropped is None:
            return False
        if dropped["payload_dropped_at"] is not None:
            raise PayloadDropped(guid, dropped["payload_dropped_at"])
        await connection.execute(
            "UPDATE delivery SET state = 'queued', attempts = 0, last_error = NULL, "
            "processed_at = NULL WHERE guid = $1",
            guid,
        )
        await queue.enqueue(jobs.PROCESS_DELIVERY, {"guid": guid}, dedupe_key=f"delivery:{guid}")
    return True


async def discard(guid: str) -> str | None:
    """An operator gives up on a failed delivery: it is no longer listed as failed, and its
    payload follows the ordinary retention windows (counted from its arrival, so an old one goes
    at the next prune). Returns the state it had (None: no such delivery); only a failed delivery
    changes."""
    async with engine.transaction(), engine.connection() as connection:
        state = await connection.fetchval(
            "SELECT state FROM delivery WHERE guid = $1 FOR UPDATE", guid
        )
        if state == DeliveryState.FAILED:
            await connection.execute(
                "UPDATE delivery SET state = 'discarded' WHERE guid = $1", guid
            )
    return str(state) if state is not None else None


async def requeue_stranded(older_than_minutes: float = 15) -> int:
    """Queue again deliveries left `queued` with no job (a job lost to an unexpected crash).
    The dedupe key makes this a no-op for deliveries whose job is still queued or running."""
    async with engine.connection() as connection:
        guids = await connection.fetch(
            "SELECT guid FROM delivery WHERE state = 'queued' "
            "AND received_at < now() - make_interval(mins => $1::int) LIMIT 500",
            int(older_than_minutes),
        )
    count = 0
    for row in guids:
        async with engine.transaction():
            if await queue.enqueue(
                jobs.PROCESS_DELIVERY, {"guid": row["guid"]}, dedupe_key=f"delivery:{row['guid']}"
            ):
                count += 1
    return count


class MalformedPayload(ValueError):
    """A signed webhook payload whose fields Dispatch reads are not shaped as GitHub sends them;
    the message names the field."""


# Postgres bigint: ids beyond it are no GitHub id.
MAX_ID = 2**63 - 1


def payload_summary(payload: dict[str, Any]) -> tuple[str | None, int | None, str | None]:
    """(action, installation id, repository full name) from a webhook payload. Raises
    MalformedPayload when one of them has the wrong type (GitHub never sends that)."""
    action = _text(payload.get("action"), "action")
    installation = _object(payload.get("installation"), "installation")
    installation_id = installation.get("id")
    if installation_id is not None and (
        not isinstance(installation_id, int)
        or isinstance(installation_id, bool)
        or not 0 < installation_id <= MAX_ID
    ):
        raise MalformedPayload("`installation.id` must be a positive integer")
    repository = _object(payload.get("repository"), "repository")
    return action, installation_id, _text(repository.get("full_name"), "repository.full_name")


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"`{name}` must be an object")
    return value


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedPayload(f"`{name}` must be a string")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise MalformedPayload(f"`{name}` is not valid Unicode (a lone surrogate)") from None
    return value
