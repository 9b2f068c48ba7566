"""Issues as state: the issue cache, per-repository config cache, commands, API tokens."""

from app.db.migrate import sql_migration

ID = "2026-11-21T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "issue cache, repository config cache, commands, API tokens"

SQL = """
CREATE TABLE issue (
    id bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    repository_id bigint NOT NULL,
    repository text NOT NULL,
    number integer NOT NULL,
    node_id text,
    title text NOT NULL DEFAULT '',
    body text NOT NULL DEFAULT '',
    state text NOT NULL DEFAULT 'open',
    labels text[] NOT NULL DEFAULT '{}',
    assignees text[] NOT NULL DEFAULT '{}',
    author text,
    status text,
    priority text,
    agents text[] NOT NULL DEFAULT '{}',
    created_at timestamptz,
    updated_at timestamptz,
    closed_at timestamptz,
    deleted boolean NOT NULL DEFAULT false,
    cached_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repository_id, number)
);
CREATE INDEX issue_repository_idx ON issue (lower(repository), number);
CREATE INDEX issue_labels_idx ON issue USING gin (labels);
CREATE INDEX issue_queue_idx ON issue (status, priority, created_at) WHERE state = 'open';

CREATE TABLE repo_config (
    repository text PRIMARY KEY,
    sha text,
    config jsonb NOT NULL DEFAULT '{}',
    error text,
    fetched_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE command (
    id bigserial PRIMARY KEY,
    delivery_guid text NOT NULL,
    position integer NOT NULL,
    installation_id bigint NOT NULL,
    repository text NOT NULL,
    repository_id bigint NOT NULL,
    issue_number integer NOT NULL,
    is_pull boolean NOT NULL DEFAULT false,
    author text NOT NULL,
    verb text NOT NULL,
    args text NOT NULL DEFAULT '',
    line text NOT NULL,
    target jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'done', 'refused', 'failed')),
    reply text,
    reaction text,
    answered_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (delivery_guid, position)
);
CREATE INDEX command_issue_idx ON command (lower(repository), issue_number, created_at DESC);

CREATE TABLE api_token (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    token_hash text NOT NULL UNIQUE,
    scope text NOT NULL CHECK (scope IN ('admin', 'agent')),
    repositories text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
