"""API tokens for operators, agent harnesses and MCP clients: shown once, stored as a SHA-256
hash, scoped to `read`, `agent`, `dispatch` or `admin` (each includes the ones before it) and
optionally to repositories."""
