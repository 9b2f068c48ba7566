"""Every mode does what it says.

QA runs remember the pull request they check (number, head ref and sha, base ref) and the
`dispatch/qa` check run they report to; QA and research runs keep their whole report and the
comment it is posted in. Workers record a heartbeat, so `dispatch doctor` can tell whether one
is running.
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T17:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "QA target pull request and check run, full reports, worker heartbeats"

SQL = """
ALTER TABLE run ADD COLUMN target_pull jsonb;
ALTER TABLE run ADD COLUMN report text;
ALTER TABLE run ADD COLUMN report_comment_id bigint;
ALTER TABLE run ADD COLUMN check_run_id bigint;

CREATE TABLE worker_heartbeat (
    worker text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at timestamptz NOT NULL
);
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
