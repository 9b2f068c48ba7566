"""Pull-request follow-ups in the claim queue: a claim is of an issue (`kind = 'issue'`) or of a
pull request whose change requests wait for an agent (`kind = 'pr_follow_up'`, with the head
commit it was claimed at, which the agent's push must build on).
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "claims of pull-request follow-ups"

SQL = """
ALTER TABLE claim ADD COLUMN kind text NOT NULL DEFAULT 'issue'
    CHECK (kind IN ('issue', 'pr_follow_up'));
ALTER TABLE claim ADD COLUMN head_sha text;
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
