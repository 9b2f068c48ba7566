"""Safe by default.

Commands remember why they were refused, so a flood from one person gets one reply. Runs keep
the issue text their agent was briefed with, and plans the issue text they were made from, so an
approval binds that text and a later edit of the issue cannot change what gets implemented.
Runs carry a key that signs their viewer links, and which ends with the run.
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "command refusal kind, issue snapshots on runs and plans, per-run viewer key"

SQL = """
ALTER TABLE command ADD COLUMN refused_for text;
CREATE INDEX command_author_idx ON command (lower(repository), lower(author), created_at DESC);

ALTER TABLE run ADD COLUMN issue_title text;
ALTER TABLE run ADD COLUMN issue_body text;
ALTER TABLE run ADD COLUMN issue_edited boolean NOT NULL DEFAULT false;
ALTER TABLE run ADD COLUMN viewer_key text;
-- Links handed out before this migration stop working; new ones are signed with the run's key.
UPDATE run SET viewer_key = md5(random()::text || id::text)
    WHERE state IN ('queued', 'dispatched', 'running');

ALTER TABLE plan ADD COLUMN issue_title text;
ALTER TABLE plan ADD COLUMN issue_body text;
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
