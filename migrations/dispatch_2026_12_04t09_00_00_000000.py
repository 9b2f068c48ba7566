"""Commands: a lease on sending the comment's 👀. `acknowledged_at` now means GitHub took the 👀;
`eyes_claimed_until` says a sender is about to send it, until when. A sender that dies with the
claim (a worker killed while it waited for a content slot) no longer keeps the 👀 from ever
being sent: once the lease is over, the command's job sends it."""

from app.db.migrate import sql_migration

ID = "2026-12-04T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "command 👀 claim lease"

SQL = """
ALTER TABLE command ADD COLUMN eyes_claimed_until timestamptz;
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
