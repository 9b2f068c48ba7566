"""Piccolo table classes for the tables queried through Piccolo's query builder.

The migrations are the schema's source of truth (raw SQL: partial indexes, HNSW, constraints).
Tables whose queries need SQL Piccolo does not express well (row locks, `ON CONFLICT ... RETURNING`,
vector distances: runs, plans, budgets, alerts, fix attempts) are reached with SQL in their area
instead of through a class here. `tests/db/test_schema.py` checks that these classes agree with the
migrated database. Each table's meaning belongs to the area named in its docstring.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    Array,
    BigInt,
    BigSerial,
    Boolean,
    Integer,
    Text,
    Timestamptz,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.db.engine import DB


class Installation(Table, db=DB):
    """A GitHub App installation (app/installations)."""

    id = BigInt(primary_key=True)
    account_login = Text()
    account_type = Text()
    account_id = BigInt(null=True, default=None)
    repository_selection = Text(null=True, default=None)
    permissions = JSONB(default={})
    events = JSONB(default=[])
    suspended_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Repository(Table, db=DB):
    """A repository an installation can see (app/installations)."""

    id = BigInt(primary_key=True)
    installation_id = BigInt()
    full_name = Text()
    private = Boolean(default=False)
    default_branch = Text(null=True, default=None)
    removed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Delivery(Table, db=DB):
    """The delivery journal: every inbound webhook, verified, before any work (app/intake)."""

    id = BigSerial(primary_key=True)
    guid = Text(unique=True)
    source = Text(default="github")
    event = Text()
    action = Text(null=True, default=None)
    installation_id = BigInt(null=True, default=None)
    repository = Text(null=True, default=None)
    state = Text()
    attempts = Integer(default=0)
    last_error = Text(null=True, default=None)
    received_at = Timestamptz(default=TimestamptzNow())
    processed_at = Timestamptz(null=True, default=None)
    payload = JSONB()


class AuditLog(Table, db=DB):
    """Every change Dispatch makes or refuses, with who asked and why (app/audit)."""

    id = BigSerial(primary_key=True)
    at = Timestamptz(default=TimestamptzNow())
    actor = Text()
    action = Text()
    target = Text()
    installation_id = BigInt(null=True, default=None)
    repository = Text(null=True, default=None)
    issue_number = Integer(null=True, default=None)
    before = JSONB(null=True, default=None)
    after = JSONB(null=True, default=None)
    outcome = Text()
    reason = Text(null=True, default=None)
    delivery_guid = Text(null=True, default=None)


class SweepState(Table, db=DB):
    """Bookmarks of scheduled sweeps, e.g. how far the missed-delivery sweep has read."""

    name = Text(primary_key=True)
    last_run_at = Timestamptz(null=True, default=None)
    cursor = Text(null=True, default=None)


class Issue(Table, db=DB):
    """The cache of GitHub issues: webhooks keep it fresh, backfill fills it, reconcile repairs
    it. Decisions that matter re-read live labels from GitHub (app/issues)."""

    id = BigSerial(primary_key=True)
    installation_id = BigInt()
    repository_id = BigInt()
    repository = Text()
    number = Integer()
    node_id = Text(null=True, default=None)
    title = Text(default="")
    body = Text(default="")
    state = Text(default="open")
    labels = Array(Text())
    assignees = Array(Text())
    author = Text(null=True, default=None)
    status = Text(null=True, default=None)
    priority = Text(null=True, default=None)
    agents = Array(Text())
    created_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    deleted = Boolean(default=False)
    cached_at = Timestamptz(default=TimestamptzNow())


class RepoConfig(Table, db=DB):
    """Parsed `.github/dispatch.yml` per repository, by blob sha (app/issues/repo_config)."""

    repository = Text(primary_key=True)
    sha = Text(null=True, default=None)
    config = JSONB(default={})
    error = Text(null=True, default=None)
    fetched_at = Timestamptz(default=TimestamptzNow())


class ApiToken(Table, db=DB):
    """API tokens for harnesses and operators; only the SHA-256 of a token is stored
    (app/tokens)."""

    id = BigSerial(primary_key=True)
    name = Text(unique=True)
    token_hash = Text(unique=True)
    scope = Text()
    repositories = Array(Text())
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class CommandRecord(Table, db=DB, tablename="command"):
    """One `/dispatch` line someone wrote, from journal to answer (app/commands)."""

    id = BigSerial(primary_key=True)
    delivery_guid = Text()
    position = Integer()
    installation_id = BigInt()
    repository = Text()
    repository_id = BigInt()
    issue_number = Integer()
    is_pull = Boolean(default=False)
    author = Text()
    verb = Text()
    args = Text(default="")
    line = Text()
    target = JSONB()
    state = Text(default="pending")
    reply = Text(null=True, default=None)
    reaction = Text(null=True, default=None)
    acknowledged_at = Timestamptz(null=True, default=None)
    answered_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
