"""Stream tokens: one per run, for the agent job of its newest workflow run attempt. They post log
chunks and `started`/`progress` events only, and die with the run. Only their SHA-256 is stored."""

from app.db.migrate import sql_migration

ID = "2026-12-01T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "run stream tokens"

SQL = """
CREATE TABLE run_stream_token (
    run_id bigint PRIMARY KEY REFERENCES run (id) ON DELETE CASCADE,
    run_attempt integer NOT NULL,
    token_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
