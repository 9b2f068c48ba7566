"""One owner per table.

Runs keep what their announcement needs (the command line to quote, where the reaction goes,
what started them) and the error context of an alert, so the agents room no longer reads the
command or alert tables. Spawn decisions keep their fingerprint, so the gates answer "was this
error refused recently?" from their own table. Embeddings move off the issue cache into
`issue_embedding`, owned by search: a label change no longer rewrites a row that carries an
HNSW-indexed vector.
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "run trigger and announcement, spawn decision fingerprint, issue_embedding table"

SQL = """
ALTER TABLE run ADD COLUMN trigger text NOT NULL DEFAULT 'command'
    CHECK (trigger IN ('command', 'auto_rule', 'alert', 'retry', 'harness', 'mission', 'mcp'));
ALTER TABLE run ADD COLUMN command_line text;
ALTER TABLE run ADD COLUMN reaction_target jsonb;
ALTER TABLE run ADD COLUMN error_context jsonb;
UPDATE run SET command_line = c.line, reaction_target = c.target
    FROM command c WHERE c.id = run.command_id;
UPDATE run SET trigger = 'alert' WHERE fingerprint IS NOT NULL;
UPDATE run SET trigger = 'auto_rule' WHERE notes LIKE 'auto-dispatched:%';
UPDATE run SET trigger = 'retry' WHERE retry_of IS NOT NULL AND trigger = 'command';
CREATE INDEX run_trigger_idx ON run (repository_id, issue_number, mode) WHERE trigger = 'auto_rule';

ALTER TABLE spawn_decision ADD COLUMN fingerprint text;
UPDATE spawn_decision d SET fingerprint = r.fingerprint FROM run r WHERE r.id = d.run_id;
CREATE INDEX spawn_decision_fingerprint_idx ON spawn_decision (fingerprint, at DESC)
    WHERE fingerprint IS NOT NULL AND NOT allowed;

-- The old index on issue has the name the new one takes.
DROP INDEX issue_embedding_hnsw;
CREATE TABLE issue_embedding (
    issue_id bigint PRIMARY KEY REFERENCES issue (id) ON DELETE CASCADE,
    repository_id bigint NOT NULL,
    number integer NOT NULL,
    open boolean NOT NULL DEFAULT true,
    deleted boolean NOT NULL DEFAULT false,
    embedding vector(384) NOT NULL,
    embedded_hash text NOT NULL,
    model text NOT NULL,
    density real,
    embedded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX issue_embedding_number_idx ON issue_embedding (repository_id, number);
INSERT INTO issue_embedding (issue_id, repository_id, number, open, deleted, embedding,
        embedded_hash, model, density)
    SELECT id, repository_id, number, state = 'open', deleted, embedding, embedded_hash,
        'all-MiniLM-L6-v2-int8', density
    FROM issue WHERE embedding IS NOT NULL AND embedded_hash IS NOT NULL;
CREATE INDEX issue_embedding_hnsw ON issue_embedding USING hnsw (embedding vector_cosine_ops);

ALTER TABLE issue DROP COLUMN embedding;
ALTER TABLE issue DROP COLUMN embedded_hash;
ALTER TABLE issue DROP COLUMN density;
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
