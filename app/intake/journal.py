"""The delivery journal: every verified inbound event is stored before anything acts on it.

`record()` stores a delivery and queues its processing in one transaction; a guid seen before is
reported as a duplicate and queues nothing. Deliveries that arrive together share that
transaction (group commit: one INSERT, one commit, each answered when the batch is durable).
The journal is also what `dispatch deliveries` lists, replays and discards.

The body is stored as sent, zlib-compressed (`body`): GitHub's JSON shrinks to a sixth that way,
half of what Postgres's own compression of a jsonb column keeps. Rows journaled before that keep
their jsonb `payload`; `decode()` reads either. Old payloads are dropped by
`app/intake/retention.py`, which leaves the row (and so the guid's deduplication) in place.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import msgspec

from app import jobs, queue
from app.db import engine

# zlib level 1: ~60 us for a 14 KB payload, 2.2 KB stored; level 6 (zlib's default) keeps 1.9 KB
# but takes ~0.3 ms, half of what the rest of acknowledging a delivery costs the server.
COMPRESSION_LEVEL = 1


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
    body: str | bytes  # as sent (bytes: no decoding on the way in)
    source: str = "github"
    # When it arrived by the app's clock (retention windows are measured on it); None: now().
    received_at: datetime | None = None
    # A developer's command rides on it: processed before other deliveries waiting.
    carries_command: bool = False


# Many deliveries in one statement: one row per array element. Within one batch a guid appears
# at most once (`_GroupCommit` answers later copies as duplicates).
_INSERT_MANY = """
INSERT INTO delivery (guid, source, event, action, installation_id, repository, state, body,
    received_at)
SELECT guid, source, event, action, installation_id, repository, state, body,
    coalesce(received_at, now())
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
    $7::text[], $8::bytea[], $9::timestamptz[])
    AS t(guid, source, event, action, installation_id, repository, state, body, received_at)
ON CONFLICT (guid) DO NOTHING
RETURNING guid
"""

# The same, and the jobs of the new, handled deliveries, in one statement: one round trip and
# one commit (a statement is its own transaction), rather than BEGIN, two statements and COMMIT.
# Each job at its delivery's priority ($10, by guid).
_QUEUE_CTES = queue.enqueue_from_sql(
    "journaled_queued",
    name=jobs.PROCESS_DELIVERY,
    payload="jsonb_build_object('guid', guid)::text",
    dedupe_key="'delivery:' || guid",
    priority="priority",
)
_INSERT_AND_QUEUE = (
    None
    if _QUEUE_CTES is None
    else f"""
WITH journaled AS ({_INSERT_MANY.replace("RETURNING guid", "RETURNING guid, state")}),
journaled_queued AS (
    SELECT j.guid, p.priority FROM journaled j
    JOIN unnest($1::text[], $10::int[]) AS p(guid, priority) USING (guid)
    WHERE j.state = '{DeliveryState.QUEUED}'
),
{_QUEUE_CTES}
SELECT guid FROM journaled
"""
)


def encode(body: str | bytes) -> bytes:
    """A webhook body as the journal stores it."""
    return zlib.compress(body.encode() if isinstance(body, str) else body, COMPRESSION_LEVEL)


def decode(body: bytes | None, legacy: Any = None) -> Any:
    """The payload of a journal row (`body`, or the jsonb `payload` of rows journaled before
    bodies were compressed); None once it has been dropped."""
    if body is not None:
        return msgspec.json.decode(zlib.decompress(body))
    return legacy


async def record(inbound: Inbound, *, handled: bool) -> bool:
    """Journal `inbound` (and queue it when some handler wants it). False if already journaled.
    Returns once the row (and its job) is committed: durable, with synchronous_commit on."""
    body = inbound.body
    if isinstance(body, str):
        body = body.encode()
    if b"\\u0000" in body:
        # Postgres text (and jsonb) refuses NUL, which pasted issue text can carry and handlers
        # copy into text columns.
        body = body.replace(b"\\u0000", b"\\ufffd")
    stored = encode(body)  # before queueing for a connection: intake's pool is small
    return await _group_commit().submit(
        _Row(
            inbound.guid,
            inbound.source,
            inbound.event,
            inbound.action,
            inbound.installation_id,
            inbound.repository,
            DeliveryState.QUEUED if handled else DeliveryState.IGNORED,
            stored,
            inbound.received_at,
            jobs.COMMAND_DELIVERY_PRIORITY
            if inbound.carries_command
            else jobs.PRIORITIES[jobs.PROCESS_DELIVERY],
        )
    )


class _Row(NamedTuple):
    guid: str
    source: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    state: str
    body: bytes
    received_at: datetime | None
    priority: int  # of its processing job (not stored in the journal)


# A batch's statement carries at most this many deliveries; at most FLUSHES_AT_ONCE batches are
# being committed at any moment (the others wait, and grow, meanwhile).
BATCH_MAX = 256
FLUSHES_AT_ONCE = 2


class _GroupCommit:
    """Group commit: deliveries that arrive while earlier ones are being committed are journaled
    together, by one INSERT (plus one for their jobs) and one commit, and each waiting request is
    answered once the commit of its batch returns. A lone delivery is written at once (no timer),
    so batching only ever happens when requests would otherwise wait for a connection."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.waiting: list[tuple[_Row, asyncio.Future[bool]]] = []
        self.flushes: set[asyncio.Task[None]] = set()

    async def submit(self, row: _Row) -> bool:
        answer: asyncio.Future[bool] = self.loop.create_future()
        self.waiting.append((row, answer))
        if len(self.flushes) < FLUSHES_AT_ONCE:
            task = self.loop.create_task(self._flush(), name="journal-group-commit")
            self.flushes.add(task)
            task.add_done_callback(self.flushes.discard)
        return await answer

    async def _flush(self) -> None:
        while self.waiting:
            batch = self.waiting[:BATCH_MAX]
            del self.waiting[:BATCH_MAX]
            try:
                stored = await _insert(batch)
            except BaseException as exc:
                for _, answer in batch:
                    if not answer.done():
                        if isinstance(exc, asyncio.CancelledError):
                            answer.cancel()
                        else:
                            answer.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, answer), inserted in zip(batch, stored, strict=True):
                if not answer.done():
                    answer.set_result(inserted)


_batcher: _GroupCommit | None = None


def _group_commit() -> _GroupCommit:
    global _batcher
    if _batcher is None or _batcher.loop is not asyncio.get_running_loop():
        _batcher = _GroupCommit()
    return _batcher


async def _insert(batch: list[tuple[_Row, asyncio.Future[bool]]]) -> list[bool]:
    """Journal a batch and queue the jobs of its new, handled deliveries, in one transaction.
    For each entry: True if it was journaled now, False if its guid already was."""
    first: dict[str, int] = {}
    for i, (row, _) in enumerate(batch):
        first.setdefault(row.guid, i)
    rows = [batch[i][0] for i in first.values()]
    columns = list(zip(*rows, strict=True))
    if _INSERT_AND_QUEUE is not None:
        async with engine.intake_connection() as connection:
            journaled = await connection.fetch(_INSERT_AND_QUEUE, *columns)
        inserted = {record["guid"] for record in journaled}
        return [row.guid in inserted and first[row.guid] == i for i, (row, _) in enumerate(batch)]
    async with engine.intake_connection() as connection, connection.transaction():
        journaled = await connection.fetch(_INSERT_MANY, *columns[:-1])  # all but the priority
        inserted = {record["guid"] for record in journaled}
        queued = [r for r in rows if r.guid in inserted and r.state == DeliveryState.QUEUED]
        if queued:
            await queue.enqueue_many(
                jobs.PROCESS_DELIVERY,
                [{"guid": r.guid} for r in queued],
                dedupe_keys=[f"delivery:{r.guid}" for r in queued],
                connection=connection,
                priorities=[r.priority for r in queued],
            )
    return [row.guid in inserted and first[row.guid] == i for i, (row, _) in enumerate(batch)]


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
