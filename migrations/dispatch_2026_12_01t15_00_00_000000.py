"""Claims: ready issues as a queue for any harness. One row per claim, with its lease; a unique
index keeps one active claim per issue whatever the number of replicas racing for it.

API token scopes gain `read` (lists and reads) and `dispatch` (also starts agent runs) next to
`agent` and `admin`, which keep their meaning.
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "claims with leases; read and dispatch API token scopes"

SQL = """
CREATE TABLE claim (
    id bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    repository_id bigint NOT NULL,
    repository text NOT NULL,
    issue_number integer NOT NULL,
    agent text NOT NULL,
    token_id bigint,
    token_name text NOT NULL,
    state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'released', 'expired', 'revoked')),
    outcome text CHECK (outcome IN ('done', 'blocked', 'abandoned')),
    reason text,
    pr_url text,
    run_id bigint,
    claimed_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    lease_expires_at timestamptz NOT NULL,
    ended_at timestamptz,
    ended_by text
);
-- No two agents ever hold the same issue, across any number of replicas.
CREATE UNIQUE INDEX claim_one_active_per_issue ON claim (repository_id, issue_number)
    WHERE state = 'active';
CREATE INDEX claim_lease_idx ON claim (lease_expires_at) WHERE state = 'active';
CREATE INDEX claim_issue_idx ON claim (repository_id, issue_number, id DESC);
CREATE INDEX claim_run_idx ON claim (run_id) WHERE run_id IS NOT NULL;

ALTER TABLE api_token DROP CONSTRAINT api_token_scope_check;
ALTER TABLE api_token ADD CONSTRAINT api_token_scope_check
    CHECK (scope IN ('read', 'agent', 'dispatch', 'admin'));
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
