"""Many replicas, one GitHub budget; workflow re-runs keep their logs.

GitHub's limits are per installation, not per process: the content-creating requests every
Dispatch process sends take slots from one table (`github_content_slot`, serialized by a row lock
on `github_pace`), a rate limit one process hears pauses all of them (`github_pace.paused_until`),
and commenters' permissions are cached once for everyone (`github_permission`).

A workflow re-run is a new attempt of the same run: runs remember their latest attempt, and log
chunks are kept per attempt (each attempt's log starts again at seq 1).
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T18:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "shared GitHub pacing and permission cache; run attempts and their logs"

SQL = """
CREATE TABLE github_pace (
    installation_id bigint PRIMARY KEY,
    paused_until timestamptz,
    pause_reason text
);

CREATE TABLE github_content_slot (
    installation_id bigint NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX github_content_slot_idx ON github_content_slot (installation_id, at DESC);

CREATE TABLE github_permission (
    repository text NOT NULL,
    login text NOT NULL,
    permission smallint NOT NULL,
    fetched_at timestamptz NOT NULL,
    PRIMARY KEY (repository, login)
);
CREATE INDEX github_permission_fetched_idx ON github_permission (fetched_at);

ALTER TABLE run ADD COLUMN attempt integer NOT NULL DEFAULT 1 CHECK (attempt > 0);

ALTER TABLE log_chunk ADD COLUMN attempt integer NOT NULL DEFAULT 1 CHECK (attempt > 0);
ALTER TABLE log_chunk DROP CONSTRAINT log_chunk_pkey;
ALTER TABLE log_chunk ADD PRIMARY KEY (run_id, attempt, seq);
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
