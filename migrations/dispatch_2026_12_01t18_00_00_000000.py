"""Review feedback goes back to an agent: the `revise` mode and its `review` trigger.

A revise run remembers the issue its pull request fixes (`origin_issue`, where its status comment
is linked from), the review feedback and diff summary it was asked with (`follow_up`, so both
briefs of one run say the same), and the commit its publish job pushed (`pushed_sha`).
"""

from app.db.migrate import sql_migration

ID = "2026-12-01T18:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "revise mode: review follow-ups on pull requests"

SQL = """
ALTER TABLE run DROP CONSTRAINT run_mode_check;
ALTER TABLE run ADD CONSTRAINT run_mode_check
    CHECK (mode IN ('investigate', 'implement', 'qa', 'research', 'auto_investigate', 'revise'));
ALTER TABLE run DROP CONSTRAINT run_trigger_check;
ALTER TABLE run ADD CONSTRAINT run_trigger_check
    CHECK (trigger IN ('command', 'auto_rule', 'alert', 'retry', 'harness', 'mission', 'mcp',
                       'review'));
ALTER TABLE run ADD COLUMN origin_issue integer;
ALTER TABLE run ADD COLUMN follow_up jsonb;
ALTER TABLE run ADD COLUMN pushed_sha text;
"""


async def forwards():
    return sql_migration(ID, DESCRIPTION, SQL)
