"""Commands answered once, through GitHub outages.

A command remembers the last error that kept it from being answered (so operators see it in
`dispatch deliveries --failed` while it is retried) and how many times its answer was tried (a
second try looks for the answer an earlier one may have posted before its reply was lost).
A failed fix remembers the priority it raised its issue to, so a retried escalation does not
raise it again.
"""

from app.db.migrate import sql_migration

ID = "2026-12-02T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "command last error and answer attempts, failed fix escalation"

SQL = """
ALTER TABLE command ADD COLUMN last_error text;
ALTER TABLE command ADD COLUMN answer_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX command_unanswered_idx ON command (created_at DESC)
    WHERE answered_at IS NULL AND last_error IS NOT NULL;

ALTER TABLE fix_attempt ADD COLUMN escalated_from text;
ALTER TABLE fix_attempt ADD COLUMN escalated_to text;
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
