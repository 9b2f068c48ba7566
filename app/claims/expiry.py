"""Leases nobody renewed: a scheduled job ends every claim whose lease (`CLAIM_LEASE_MINUTES`
from the claim or the last heartbeat) ran out as `abandoned`, so the issue goes back to
`status/ready`."""

from __future__ import annotations

import logging

from app.claims.ending import end, recache
from app.claims.records import Claim, ClaimState, Outcome
from app.db import engine
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def expire_due(rt: Runtime, *, limit: int = 200) -> int:
    """End every claim whose lease ran out as `abandoned`: the issue returns to the queue.
    Several workers may run this at once; each claim is ended once (`SKIP LOCKED`)."""
    now = rt.clock.now()
    async with engine.connection() as connection:
        due = await connection.fetch(
            "SELECT id FROM claim WHERE state = 'active' AND lease_expires_at <= $1 "
            "ORDER BY lease_expires_at LIMIT $2",
            now,
            limit,
        )
    expired = 0
    for row in due:
        try:
            async with engine.transaction():
                async with engine.connection() as connection:
                    found = await connection.fetchrow(
                        "SELECT * FROM claim WHERE id = $1 AND state = 'active' "
                        "AND lease_expires_at <= $2 FOR UPDATE SKIP LOCKED",
                        row["id"],
                        now,
                    )
                if found is None:
                    continue
                claim = Claim.from_row(found)
                ended = await end(
                    rt,
                    claim,
                    ClaimState.EXPIRED,
                    Outcome.ABANDONED,
                    reason=f"no heartbeat for {rt.settings.claim_lease_minutes:g} minutes",
                    pr_url=None,
                    by="dispatch",
                )
        except Exception:
            log.exception(
                "could not expire a claim; the next pass retries", extra={"claim": row["id"]}
            )
            continue
        await recache(rt, ended)
        expired += 1
    return expired
