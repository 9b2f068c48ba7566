"""Customers and their portal.

`customer`: one row per customer of an installation (slug unique per installation among live
customers, soft-deleted), with the SHA-256 of its portal token. `portal_issue_activity`: what the
health view needs from comments (first response by the team, last comment), per issue.
`portal_pull_request`: pull requests that fix an issue, for the public timeline. `portal_rate`:
per-minute request counters of the portal, shared by every replica (unlogged: losing them in a
crash only resets the counts).
"""

from app.db.migrate import sql_migration

ID = "2026-12-03T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer, portal_issue_activity, portal_pull_request, portal_rate"

SQL = """
CREATE TABLE customer (
    id bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    slug text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    color text NOT NULL DEFAULT '#0366d6' CHECK (color ~ '^#[0-9a-f]{6}$'),
    logo_url text,
    token_hash text NOT NULL,
    token_rotated_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX customer_slug_idx ON customer (installation_id, slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX customer_token_idx ON customer (token_hash);

CREATE TABLE portal_issue_activity (
    repository_id bigint NOT NULL,
    number integer NOT NULL,
    first_team_response_at timestamptz,
    last_comment_at timestamptz,
    backfilled_at timestamptz,
    PRIMARY KEY (repository_id, number)
);

CREATE TABLE portal_pull_request (
    repository_id bigint NOT NULL,
    issue_number integer NOT NULL,
    number integer NOT NULL,
    url text,
    state text NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    opened_at timestamptz,
    closed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, issue_number, number)
);

CREATE UNLOGGED TABLE portal_rate (
    key text NOT NULL,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (key, window_start)
);
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
