"""The MCP server at `/mcp`: Claude Code, Cursor or any MCP client searches, creates and edits
issues, dispatches agents, claims work and reports through the same services as the HTTP API and
the `/dispatch` verbs, with the same permissions, spawn gates and audit."""
