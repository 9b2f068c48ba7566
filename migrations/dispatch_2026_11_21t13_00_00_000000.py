"""Commands: when their 👀 went out (right after the delivery committed), so the command's own
job does not send it again. Issues: their neighbourhood density, for ranking similar issues."""

from app.db.migrate import sql_migration

ID = "2026-11-21T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "command acknowledgement time, issue neighbourhood density"

SQL = """
ALTER TABLE command ADD COLUMN acknowledged_at timestamptz;
ALTER TABLE issue ADD COLUMN density real;
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
