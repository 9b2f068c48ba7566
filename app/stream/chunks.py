"""Log chunks: stored per (run, seq), idempotent, and announced to every server process with
Postgres `NOTIFY` in the same transaction (so listeners hear of a chunk only once it is
committed). Small chunks travel inside the notification; larger ones are fetched by seq.

Chunks are dropped by whoever owns the run they belong to, once it decides the log has expired
(`drop()`, in small batches)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from app.db import engine, pruning
from app.logs import scrub_credentials

CHANNEL = "dispatch_stream"
# NOTIFY payloads are capped at 8000 bytes; leave room for the envelope.
INLINE_LIMIT = 7000


@dataclass(frozen=True)
class Chunk:
    run_id: int
    seq: int
    data: str


async def append(run_id: int, seq: int, data: str) -> bool:
    """Store one chunk (credentials scrubbed first: the agent may print what it should not);
    False if that seq was already stored (a retry)."""
    data = scrub_credentials(data)
    async with engine.transaction(), engine.connection() as connection:
        inserted = await connection.fetchval(
            "INSERT INTO log_chunk (run_id, seq, data) VALUES ($1, $2, $3) "
            "ON CONFLICT (run_id, seq) DO NOTHING RETURNING seq",
            run_id,
            seq,
            data,
        )
        if inserted is None:
            return False
        message: dict[str, object] = {"run": run_id, "seq": seq}
        if len(data.encode()) <= INLINE_LIMIT:
            message["data"] = data
        await connection.execute(
            "SELECT pg_notify($1, $2)", CHANNEL, msgspec.json.encode(message).decode()
        )
    return True


async def announce_end(run_id: int, state: str) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "SELECT pg_notify($1, $2)",
            CHANNEL,
            msgspec.json.encode({"run": run_id, "end": state}).decode(),
        )


async def since(run_id: int, after_seq: int, limit: int = 5000) -> list[Chunk]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT seq, data FROM log_chunk WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            run_id,
            after_seq,
            limit,
        )
    return [Chunk(run_id, row["seq"], row["data"]) for row in rows]


async def between(run_id: int, after_seq: int, up_to_seq: int) -> list[Chunk]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT seq, data FROM log_chunk WHERE run_id = $1 AND seq > $2 AND seq <= $3 "
            "ORDER BY seq",
            run_id,
            after_seq,
            up_to_seq,
        )
    return [Chunk(run_id, row["seq"], row["data"]) for row in rows]


_DROP = """
DELETE FROM log_chunk
WHERE (run_id, seq) IN (
    SELECT run_id, seq FROM log_chunk WHERE run_id = ANY($2) LIMIT $1 FOR UPDATE SKIP LOCKED
)
"""


async def drop(run_ids: list[int], *, batch: int) -> int:
    """Delete every chunk of these runs, `batch` chunks per transaction; the number deleted."""
    return await pruning.in_batches(_DROP, run_ids, batch=batch)


async def held_by(run_ids: list[int]) -> tuple[int, int]:
    """(chunks, bytes as stored) of these runs' logs."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT count(*), coalesce(sum(pg_column_size(data)), 0) FROM log_chunk "
            "WHERE run_id = ANY($1)",
            run_ids,
        )
    assert row is not None
    return int(row[0]), int(row[1])
