"""Bounded storage.

Delivery payloads are stored zlib-compressed in `body` (GitHub's JSON shrinks to an eighth; pglz,
Postgres's own compression, kept a jsonb payload at a quarter); rows journaled before keep their
jsonb `payload` until it is dropped. A payload can now be dropped while the row (guid, event, state, times) stays, and a
failed delivery can be `discarded` by an operator. Runs record when their log expired. The indexes
let the prune job find the oldest rows past their window without scanning the tables.

Every statement here is quick on a large table: no column gets a default, and the widened state
check is added NOT VALID (every existing row met the narrower one).
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "retention: compressed delivery bodies, droppable payloads, expired run logs"

SQL = """
ALTER TABLE delivery ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE delivery ADD COLUMN body bytea;
-- Already compressed: Postgres need not try again.
ALTER TABLE delivery ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE delivery ADD COLUMN payload_dropped_at timestamptz;
ALTER TABLE delivery DROP CONSTRAINT delivery_state_check;
ALTER TABLE delivery ADD CONSTRAINT delivery_state_check
    CHECK (state IN ('queued', 'processed', 'failed', 'ignored', 'discarded')) NOT VALID;
CREATE INDEX delivery_payload_kept_idx ON delivery (received_at) WHERE payload_dropped_at IS NULL;

ALTER TABLE run ADD COLUMN log_expired_at timestamptz;
CREATE INDEX run_log_kept_idx ON run (finished_at)
    WHERE log_expired_at IS NULL AND finished_at IS NOT NULL;

CREATE INDEX spawn_decision_at_idx ON spawn_decision (at);
CREATE INDEX pgqueuer_statistics_created_idx ON pgqueuer_statistics (created);
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
