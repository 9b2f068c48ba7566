"""Search and remediation: issue embeddings (HNSW, cosine), alert errors by fingerprint, alert
events, fix attempts."""

from app.db.migrate import sql_migration

ID = "2026-11-21T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "issue embeddings, alert errors and events, fix attempts"

SQL = """
ALTER TABLE issue ADD COLUMN embedding vector(384);
ALTER TABLE issue ADD COLUMN embedded_hash text;
CREATE INDEX issue_embedding_hnsw ON issue USING hnsw (embedding vector_cosine_ops);

CREATE TABLE alert_error (
    fingerprint text PRIMARY KEY,
    source text NOT NULL,
    feature text NOT NULL,
    message text NOT NULL,
    normalized text NOT NULL,
    severity text,
    repository text NOT NULL,
    installation_id bigint,
    repository_id bigint,
    issue_number integer,
    issue_requested_at timestamptz,
    event_count bigint NOT NULL DEFAULT 0,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    stack text,
    samples jsonb NOT NULL DEFAULT '[]',
    links jsonb NOT NULL DEFAULT '{}',
    last_release text,
    summary_comment_id bigint,
    summary_updated_at timestamptz,
    summary_count bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alert_error_issue_idx ON alert_error (repository_id, issue_number)
    WHERE issue_number IS NOT NULL;

CREATE TABLE alert_event (
    id bigserial PRIMARY KEY,
    fingerprint text NOT NULL REFERENCES alert_error (fingerprint) ON DELETE CASCADE,
    source text NOT NULL,
    status text NOT NULL,
    count integer NOT NULL DEFAULT 1,
    release text,
    message text,
    at timestamptz NOT NULL,
    delivery_guid text
);
CREATE INDEX alert_event_fingerprint_idx ON alert_event (fingerprint, at DESC);

CREATE TABLE fix_attempt (
    id bigserial PRIMARY KEY,
    fingerprint text NOT NULL REFERENCES alert_error (fingerprint) ON DELETE CASCADE,
    installation_id bigint NOT NULL,
    repository text NOT NULL,
    issue_number integer NOT NULL,
    pr_number integer NOT NULL,
    merge_commit_sha text,
    merged_at timestamptz NOT NULL,
    deployed_at timestamptz,
    deployment_sha text,
    window_start timestamptz NOT NULL,
    deadline timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'monitoring'
        CHECK (state IN ('monitoring', 'verified', 'failed')),
    recurrences integer NOT NULL DEFAULT 0,
    decided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One fix watched per error at a time.
CREATE UNIQUE INDEX fix_attempt_monitoring_idx ON fix_attempt (fingerprint)
    WHERE state = 'monitoring';
CREATE INDEX fix_attempt_deadline_idx ON fix_attempt (deadline) WHERE state = 'monitoring';
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
