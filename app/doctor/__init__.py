"""`dispatch doctor`: checks an install end to end and says what to fix. Configuration (every
setting valid, unknown or old variable names), the data directory's disk, the database
(reachable, pgvector, migrations, a live worker), the GitHub App (credentials, webhook URL,
permissions and events against `app.yml`, failed deliveries), and every installation and
repository (a token, the labels, the agent workflow and `.github/dispatch.yml`).

It only reads: nothing here changes GitHub or the database (the worker records its own
heartbeat)."""
