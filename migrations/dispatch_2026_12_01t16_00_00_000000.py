"""Missions: a person asks for an outcome, Claude proposes issues and runs, a human approves.

`mission` is one request on one issue (its planning conversation, rounds, cost and state);
`mission_proposal` is each proposal Claude made for it, bound by a revision hash to the exact
items and to the mission issue's text it was planned from; `mission_item` is what approving a
revision did, one row per item (the issue created or reused, the run requested, or why not), so
a retried approval creates nothing twice. `cost_charge` holds spend outside agent runs (mission
planning), counted against the installation's daily cost budget with the runs' own cost.
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "missions, their proposals and items; cost charges outside runs"

SQL = """
CREATE TABLE cost_charge (
    id bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    source text NOT NULL,
    reference text NOT NULL,
    cost_usd double precision NOT NULL CHECK (cost_usd >= 0),
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cost_charge_day_idx ON cost_charge (installation_id, at);

CREATE TABLE mission (
    id bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    repository text NOT NULL,
    repository_id bigint NOT NULL,
    issue_number integer NOT NULL,
    source text NOT NULL CHECK (source IN ('command', 'label', 'cli', 'mcp')),
    request text NOT NULL,
    requested_by text,
    command_id bigint UNIQUE,
    state text NOT NULL DEFAULT 'planning'
        CHECK (state IN ('planning', 'waiting', 'proposed', 'executing', 'executed', 'failed',
                         'refused', 'superseded')),
    -- Bumped by every new planning (a rejection, an edit of the mission issue): a planning job
    -- of an older generation stops instead of posting a proposal nobody asked for any more.
    generation integer NOT NULL DEFAULT 1,
    nonce text NOT NULL,
    feedback text,
    transcript jsonb NOT NULL DEFAULT '[]'::jsonb,
    rounds integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    error text,
    status_comment_id bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- One live mission per issue, across replicas.
CREATE UNIQUE INDEX mission_live_idx ON mission (repository_id, issue_number)
    WHERE state IN ('planning', 'waiting', 'proposed', 'executing');
CREATE INDEX mission_issue_idx ON mission (repository_id, issue_number, id DESC);

CREATE TABLE mission_proposal (
    id bigserial PRIMARY KEY,
    mission_id bigint NOT NULL REFERENCES mission (id) ON DELETE CASCADE,
    generation integer NOT NULL,
    revision text NOT NULL,
    proposal jsonb NOT NULL,
    -- The mission issue's title and body (without Dispatch's task list) it was planned from.
    issue_hash text NOT NULL,
    state text NOT NULL DEFAULT 'proposed'
        CHECK (state IN ('proposed', 'approved', 'rejected', 'superseded')),
    comment_id bigint,
    decided_by text,
    decided_at timestamptz,
    feedback text,
    executed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mission_id, revision)
);

CREATE TABLE mission_item (
    proposal_id bigint NOT NULL REFERENCES mission_proposal (id) ON DELETE CASCADE,
    position integer NOT NULL,
    issue_number integer,
    -- Set just before the issue is created: a retry that finds it without a number looks for
    -- the issue by its marker before creating another.
    creating_since timestamptz,
    depends_on integer[] NOT NULL DEFAULT '{}',
    run_id bigint,
    outcome text NOT NULL DEFAULT 'pending'
        CHECK (outcome IN ('pending', 'no_run', 'waiting', 'requested', 'dispatched', 'refused')),
    detail text,
    PRIMARY KEY (proposal_id, position)
);
CREATE INDEX mission_item_waiting_idx ON mission_item (outcome) WHERE outcome = 'waiting';
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
