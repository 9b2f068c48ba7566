"""How long the delivery journal keeps what.

A delivery's payload is kept `DELIVERY_RETENTION_DAYS` after it arrived, then dropped; the row
(guid, event, state, times) stays `DELIVERY_ROW_RETENTION_DAYS`, at least as long as GitHub can
redeliver it (`config.REDELIVERY_WINDOW_DAYS`), so a redelivery is still answered as a duplicate.
Deliveries still `queued` or `failed` keep everything, whatever their age, until they are
processed or an operator replays or discards them.

Both steps go through the journal in small batches (`app/db/pruning.py`): intake only inserts
rows and never waits on the rows a batch holds, and a delivery being processed (its row locked)
is skipped and taken by a later prune.
"""

from __future__ import annotations

from datetime import datetime

from app.db import engine, pruning
from app.intake.journal import DeliveryState

# Deliveries that are done with: what a prune may thin out or remove.
_SETTLED = [DeliveryState.PROCESSED, DeliveryState.IGNORED, DeliveryState.DISCARDED]

_DROP_PAYLOADS = """
UPDATE delivery SET payload = NULL, body = NULL, payload_dropped_at = $3
WHERE id IN (
    SELECT id FROM delivery
    WHERE payload_dropped_at IS NULL AND received_at < $2 AND state = ANY($4)
    ORDER BY received_at LIMIT $1
    FOR UPDATE SKIP LOCKED
)
"""

_DELETE_ROWS = """
DELETE FROM delivery
WHERE id IN (
    SELECT id FROM delivery
    WHERE received_at < $2 AND state = ANY($3)
    ORDER BY received_at LIMIT $1
    FOR UPDATE SKIP LOCKED
)
"""


async def drop_payloads(
    cutoff: datetime, now: datetime, *, batch: int, dry_run: bool = False
) -> pruning.Pruned:
    """Drop the payloads of settled deliveries that arrived before `cutoff`."""
    what = "delivery payloads"
    if dry_run:
        rows, size = await pruning.estimate(
            "SELECT count(*), sum(coalesce(pg_column_size(body), 0) "
            "+ coalesce(pg_column_size(payload), 0)) FROM delivery "
            "WHERE payload_dropped_at IS NULL AND received_at < $1 AND state = ANY($2)",
            cutoff,
            _SETTLED,
        )
        return pruning.Pruned(what, rows, size, cutoff)
    rows = await pruning.in_batches(_DROP_PAYLOADS, cutoff, now, _SETTLED, batch=batch)
    return pruning.Pruned(what, rows, None, cutoff)


async def delete_rows(cutoff: datetime, *, batch: int, dry_run: bool = False) -> pruning.Pruned:
    """Delete the rows of settled deliveries that arrived before `cutoff`."""
    what = "delivery rows"
    if dry_run:
        rows, size = await pruning.estimate(
            "SELECT count(*), sum(pg_column_size(delivery.*)) FROM delivery "
            "WHERE received_at < $1 AND state = ANY($2)",
            cutoff,
            _SETTLED,
        )
        return pruning.Pruned(what, rows, size, cutoff)
    rows = await pruning.in_batches(_DELETE_ROWS, cutoff, _SETTLED, batch=batch)
    return pruning.Pruned(what, rows, None, cutoff)


async def oldest() -> dict[str, datetime | None]:
    """When the oldest delivery still journaled, and the oldest payload still kept, arrived
    (both from an index: cheap enough for every metrics scrape)."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT (SELECT min(received_at) FROM delivery) AS rows, "
            "(SELECT min(received_at) FROM delivery WHERE payload_dropped_at IS NULL) AS payloads"
        )
    assert row is not None
    return {"delivery_payloads": row["payloads"], "delivery_rows": row["rows"]}
