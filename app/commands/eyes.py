"""The 👀 on a comment with commands: "Dispatch saw your command", sent once per comment.

The delivery sends it right after its commit (`acknowledge`), before the command's job is even
picked up; if that fails or never happens, the command's job sends it (`before_running`). Whoever
sends it first claims it in the database for all the comment's commands, for a short lease
(EYES_LEASE_SECONDS) that the sender renews while it waits for a content slot and for GitHub; it
gives the claim back if GitHub did not take it, and a sender that died holding it (a killed
worker) loses it within a lease. A command's job that finds the claim held waits a moment for
that 👀 (EYES_WAIT_SECONDS: it is usually one round trip away), so the answer comes after it and
nothing runs if GitHub refuses it; past the wait it answers anyway and comes back after the lease
(`send` says how long), so the 👀 is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from app.commands.context import GenericComment
from app.db import engine
from app.github import pacing, rest
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def acknowledge(rt: Runtime, comment: GenericComment) -> None:
    """👀 on the comment right after the delivery committed. If this fails or never happens (a
    crash right after the commit), a command's job sends it. Now or never: when the
    installation's GitHub budget makes writes wait, the job sends it in turn (sending it from
    both would spend the budget twice)."""
    with pacing.at_once():
        await send(rt, rt.github.installation(comment.installation_id), comment)


# One statement claims the 👀 for the comment's unacknowledged commands (if no live claim is
# held) and, when it claims nothing, says how long another sender's claim has left (NULL: the
# 👀 is out). The outer SELECT sees the rows as they were before the UPDATE.
_CLAIM_EYES = """
WITH claimed AS (
    UPDATE command SET eyes_claimed_until = clock_timestamp() + make_interval(secs => $2)
    WHERE delivery_guid = $1 AND acknowledged_at IS NULL
        AND (eyes_claimed_until IS NULL OR eyes_claimed_until < clock_timestamp())
    RETURNING id
)
SELECT array(SELECT id FROM claimed) AS ids,
    (SELECT extract(epoch FROM max(eyes_claimed_until) - clock_timestamp()) FROM command
     WHERE delivery_guid = $1 AND acknowledged_at IS NULL) AS held_for
"""


# How long a claim on a 👀 lasts unless its sender renews it (every third of it, while it waits
# for a content slot or for GitHub): what a sender that died costs the 👀 at most.
EYES_LEASE_SECONDS = 10.0

_RENEW_EYES = """
UPDATE command SET eyes_claimed_until = clock_timestamp() + make_interval(secs => $2)
WHERE id = ANY($1::bigint[]) AND acknowledged_at IS NULL
"""


@contextlib.asynccontextmanager
async def _renewing(claimed: list[int]) -> AsyncIterator[None]:
    """Keep the claim on `claimed` alive while the block runs."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(EYES_LEASE_SECONDS / 3)
            try:
                async with engine.connection() as connection:
                    await connection.execute(_RENEW_EYES, claimed, EYES_LEASE_SECONDS)
            except (OSError, asyncpg.PostgresError) as exc:  # the next round may get through
                log.warning("👀 claim not renewed", extra={"error": str(exc)})

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def send(rt: Runtime, client: Any, comment: GenericComment) -> float:
    """👀 once per comment: claimed (for all of the comment's commands) before it is sent, so a
    command's job running at the same moment does not send it too; the claim is given back if
    GitHub did not take it. The seconds another sender's claim has left (0: the 👀 is out)."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(_CLAIM_EYES, comment.delivery, EYES_LEASE_SECONDS)
    claimed = list(row["ids"])
    if not claimed:
        return max(float(row["held_for"] or 0), 0.0)
    try:
        async with _renewing(claimed):
            await rest.react(client, comment.repository, comment.target, "eyes")
    except BaseException:
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE command SET eyes_claimed_until = NULL WHERE id = ANY($1::bigint[])",
                claimed,
            )
        raise
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE command SET acknowledged_at = now(), eyes_claimed_until = NULL "
            "WHERE id = ANY($1::bigint[])",
            claimed,
        )
    return 0.0


# How long a command's job waits for the 👀 another sender has claimed (the delivery, right
# after its commit: usually one round trip to GitHub) before the command runs without it.
EYES_WAIT_SECONDS = 2.0


async def before_running(rt: Runtime, client: Any, comment: GenericComment) -> None:
    """The 👀 before the command runs: sent here, or out from the sender that claimed it. If
    GitHub refuses it (that sender gave its claim back, and this one fails too) the command does
    not run and its job is retried; a sender that holds its claim longer than the wait (it waits
    for a content slot, or died) does not hold the command up: its 👀 follows when it ends."""
    waited_until = asyncio.get_running_loop().time() + EYES_WAIT_SECONDS
    pause = 0.02
    while await send(rt, client, comment) > 0:
        if asyncio.get_running_loop().time() + pause > waited_until:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)  # the reply goes soon after its 👀
