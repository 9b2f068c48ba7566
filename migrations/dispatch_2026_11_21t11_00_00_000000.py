"""Agent runs: runs and their events, log chunks, plans, spawn budgets and decisions, the kill
switch and fingerprint cooldowns."""

from app.db.migrate import sql_migration

ID = "2026-11-21T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "agent runs, log chunks, plans, spawn gates"

SQL = """
CREATE TABLE run (
    id bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    repository text NOT NULL,
    repository_id bigint NOT NULL,
    issue_number integer NOT NULL,
    mode text NOT NULL
        CHECK (mode IN ('investigate', 'implement', 'qa', 'research', 'auto_investigate')),
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'dispatched', 'running', 'succeeded', 'failed', 'cancelled',
                         'timed_out', 'blocked', 'refused')),
    agent text NOT NULL DEFAULT 'claude',
    requested_by text,
    command_id bigint,
    notes text,
    plan_id bigint,
    fingerprint text,
    retry_of bigint,
    workflow text,
    ref text,
    workflow_run_id bigint,
    workflow_run_url text,
    dispatch_attempts integer NOT NULL DEFAULT 0,
    dispatch_sent_at timestamptz,
    cost_cap_usd double precision,
    cost_usd double precision,
    turns integer,
    outcome text,
    summary text,
    pr_number integer,
    pr_url text,
    blocker_reason text,
    blocker_category text,
    refusal text,
    status_comment_id bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    last_seen_at timestamptz
);
-- One active run per issue, whatever the number of replicas racing to create one.
CREATE UNIQUE INDEX run_one_active_per_issue ON run (repository_id, issue_number)
    WHERE state IN ('queued', 'dispatched', 'running');
CREATE INDEX run_active_idx ON run (installation_id, mode) WHERE state IN ('dispatched', 'running');
CREATE INDEX run_issue_idx ON run (lower(repository), issue_number, id DESC);
CREATE INDEX run_workflow_run_idx ON run (workflow_run_id) WHERE workflow_run_id IS NOT NULL;
CREATE INDEX run_finished_idx ON run (installation_id, finished_at) WHERE cost_usd IS NOT NULL;

CREATE TABLE run_event (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES run (id) ON DELETE CASCADE,
    type text NOT NULL,
    body jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_event_run_idx ON run_event (run_id, id);

CREATE TABLE log_chunk (
    run_id bigint NOT NULL REFERENCES run (id) ON DELETE CASCADE,
    seq integer NOT NULL CHECK (seq > 0),
    data text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE plan (
    id bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    repository text NOT NULL,
    repository_id bigint NOT NULL,
    issue_number integer NOT NULL,
    run_id bigint REFERENCES run (id) ON DELETE SET NULL,
    revision text NOT NULL,
    body text NOT NULL,
    requested_by text,
    comment_id bigint,
    state text NOT NULL DEFAULT 'proposed'
        CHECK (state IN ('proposed', 'approved', 'rejected', 'superseded')),
    decided_by text,
    decided_at timestamptz,
    feedback text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plan_issue_idx ON plan (repository_id, issue_number, id DESC);

CREATE TABLE spawn_budget (
    installation_id bigint NOT NULL,
    mode text NOT NULL,
    day date NOT NULL,
    spawned integer NOT NULL DEFAULT 0,
    PRIMARY KEY (installation_id, mode, day)
);

CREATE TABLE spawn_decision (
    id bigserial PRIMARY KEY,
    run_id bigint REFERENCES run (id) ON DELETE CASCADE,
    installation_id bigint NOT NULL,
    mode text NOT NULL,
    gate text NOT NULL,
    allowed boolean NOT NULL,
    reason text NOT NULL,
    clears_at timestamptz,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spawn_decision_run_idx ON spawn_decision (run_id);

CREATE TABLE kill_switch (
    scope text PRIMARY KEY,
    engaged boolean NOT NULL,
    reason text,
    set_by text,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cooldown (
    fingerprint text PRIMARY KEY,
    until timestamptz NOT NULL
);
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
