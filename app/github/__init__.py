"""Talking to GitHub: the App's credentials, githubkit clients authenticated as the App (JWT) or
as an installation (cached installation tokens), bounded retries, and the pacing of
content-creating requests under GitHub's secondary rate limits, shared by every process through
PostgreSQL (as is the commenter-permission cache)."""
