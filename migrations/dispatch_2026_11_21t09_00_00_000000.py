"""Foundation: pgvector, the delivery journal, installations, repositories, the audit log, the
sweep bookmarks and pgqueuer's job tables."""

from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries

from app.db.migrate import sql_migration

ID = "2026-11-21T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "foundation: journal, installations, repositories, audit log, job queue"

SQL = """
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE installation (
    id bigint PRIMARY KEY,
    account_login text NOT NULL,
    account_type text NOT NULL,
    account_id bigint,
    repository_selection text,
    permissions jsonb NOT NULL DEFAULT '{}',
    events jsonb NOT NULL DEFAULT '[]',
    suspended_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repository (
    id bigint PRIMARY KEY,
    installation_id bigint NOT NULL REFERENCES installation (id) ON DELETE CASCADE,
    full_name text NOT NULL,
    private boolean NOT NULL DEFAULT false,
    default_branch text,
    removed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX repository_full_name_idx ON repository (lower(full_name));
CREATE INDEX repository_installation_idx ON repository (installation_id);

CREATE TABLE delivery (
    id bigserial PRIMARY KEY,
    guid text NOT NULL UNIQUE,
    source text NOT NULL DEFAULT 'github',
    event text NOT NULL,
    action text,
    installation_id bigint,
    repository text,
    state text NOT NULL CHECK (state IN ('queued', 'processed', 'failed', 'ignored')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    payload jsonb NOT NULL
);
CREATE INDEX delivery_received_at_idx ON delivery (received_at DESC);
CREATE INDEX delivery_failed_idx ON delivery (received_at DESC) WHERE state = 'failed';

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    installation_id bigint,
    repository text,
    issue_number integer,
    before jsonb,
    after jsonb,
    outcome text NOT NULL,
    reason text,
    delivery_guid text
);
CREATE INDEX audit_log_repository_idx ON audit_log (lower(repository), issue_number, at DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

CREATE TABLE sweep_state (
    name text PRIMARY KEY,
    last_run_at timestamptz,
    cursor text
);
"""


async def install_job_queue(connection) -> None:
    # pgqueuer's install() is not idempotent; running it from a migration makes it run once.
    await Queries(AsyncpgDriver(connection)).install()


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL, after=install_job_queue)
