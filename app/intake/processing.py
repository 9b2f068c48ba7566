"""Running one journaled delivery through its handlers, exactly once.

The delivery row is locked (`FOR UPDATE`) for the whole run, so a delivery is never processed by
two workers at once, and the handlers' database writes commit in the same transaction that marks
it processed: if a worker dies half-way, nothing of the attempt remains and the re-picked job runs
it again; if it dies after the commit, the re-picked job finds it processed and stops. GitHub
calls cannot join a transaction, so handlers make them idempotent (targeted label edits, comments
found by a hidden marker), or leave them to a job, or (when they are worth doing at once, like a
command's 👀) ask the event to run them after the commit.

A failing attempt rolls back to a savepoint, records the error, and asks the queue to retry with
exponential backoff (up to DELIVERY_RETRY_MAX_SECONDS between attempts); after
`DELIVERY_MAX_ATTEMPTS` the delivery is marked failed. When GitHub is what failed (5xx, timeouts,
rate limits) the delivery keeps trying for GITHUB_OUTAGE_RETRY_HOURS instead, never sooner than a
rate limit's reset: an outage is no reason to lose an event.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import timedelta

from pgqueuer.errors import RetryRequested

from app.clock import backoff
from app.db import engine
from app.events import Event, Router
from app.github import retry
from app.health.metrics import DELIVERIES, HANDLER_SECONDS
from app.intake import journal
from app.intake.journal import DeliveryState
from app.logs import delivery_context, scrub
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def process(guid: str, rt: Runtime, router: Router) -> None:
    retry_after: timedelta | None = None
    processed: Event | None = None  # its after-commit actions run once the commit is done
    with delivery_context(guid):
        async with engine.transaction() as tx, engine.connection() as connection:
            row = await connection.fetchrow(
                "SELECT source, event, action, installation_id, state, attempts, body, payload, "
                "received_at FROM delivery WHERE guid = $1 FOR UPDATE",
                guid,
            )
            if row is None:
                log.warning("delivery job without a journal row")
                return
            if row["state"] != DeliveryState.QUEUED:
                log.info("delivery already settled", extra={"state": row["state"]})
                return
            event = Event(
                name=row["event"],
                action=row["action"],
                delivery=guid,
                payload=journal.decode(row["body"], row["payload"]),
                source=row["source"],
                installation_id=row["installation_id"],
            )
            attempt = row["attempts"] + 1
            savepoint = await tx.savepoint()
            started = time.perf_counter()
            try:
                handled = await router.dispatch(event, rt)
            except Exception as exc:
                DELIVERIES.labels("retry").inc()
                await savepoint.rollback_to()
                error = scrub(retry.describe(exc))
                detail = scrub("".join(traceback.format_exception(exc))[-4000:])
                now = rt.clock.now()
                outage = retry.unavailable(exc) and now - row["received_at"] < timedelta(
                    hours=rt.settings.github_outage_retry_hours
                )
                final = attempt >= rt.settings.delivery_max_attempts and not outage
                await connection.execute(
                    "UPDATE delivery SET attempts = $2, last_error = $3, state = $4, "
                    "processed_at = CASE WHEN $4 = 'failed' THEN now() END WHERE guid = $1",
                    guid,
                    attempt,
                    detail,
                    DeliveryState.FAILED if final else DeliveryState.QUEUED,
                )
                if final:
                    DELIVERIES.labels("failed").inc()
                    log.error(
                        "delivery failed for good",
                        extra={"event": event.name, "attempt": attempt, "error": error},
                    )
                else:
                    retry_after = backoff(
                        attempt,
                        rt.settings.delivery_retry_base_seconds,
                        rt.settings.delivery_retry_max_seconds,
                    )
                    asked = retry.wait_asked(exc, now)
                    if asked is not None and asked > retry_after:
                        retry_after = asked  # GitHub said when its rate limit lifts
                    log.warning(
                        "delivery attempt failed, will retry",
                        extra={
                            "event": event.name,
                            "attempt": attempt,
                            "retry_in_seconds": retry_after.total_seconds(),
                            "error": error,
                        },
                    )
            else:
                HANDLER_SECONDS.observe(time.perf_counter() - started)
                DELIVERIES.labels("processed").inc()
                await connection.execute(
                    "UPDATE delivery SET attempts = $2, state = 'processed', last_error = NULL, "
                    "processed_at = now() WHERE guid = $1",
                    guid,
                    attempt,
                )
                processed = event
                log.info(
                    "delivery processed",
                    extra={"event": event.name, "action": event.action, "handlers": handled},
                )
        if processed is not None:
            await processed.run_after_commit()
    if retry_after is not None:
        # Raised after the commit, so the attempt count and error are kept.
        raise RetryRequested(delay=retry_after, reason="handler failed")
