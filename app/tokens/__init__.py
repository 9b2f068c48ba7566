"""API tokens for operators and agent harnesses: shown once, stored as a SHA-256 hash, scoped to
`admin` or `agent` and optionally to repositories."""
