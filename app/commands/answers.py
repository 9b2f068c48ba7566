"""A command's answer as GitHub shows it, and the answers that have not reached GitHub yet.

GitHub refuses comment bodies over 65,536 characters: a longer reply is cut there, with a signed
link to the whole of it (`fit_reply`, `full_reply`). `unanswered()` lists the commands still being
retried (or given up) without an answer on GitHub, for `dispatch deliveries --failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.db import engine
from app.github import markdown
from app.runtime import Runtime
from app.signing import InvalidToken

# GitHub refuses comment bodies over 65,536 characters; leave room for the marker.
MAX_REPLY_CHARS = 60_000
REPLY_LINK_PURPOSE = "reply"
REPLY_LINK_DAYS = 90


def reply_url(rt: Runtime, command_id: int) -> str:
    """A signed link to a reply's whole text (replies are cut at GitHub's limit)."""
    token = rt.signer.sign(REPLY_LINK_PURPOSE, f"command:{command_id}", REPLY_LINK_DAYS * 86400)
    return f"{rt.settings.dispatch_url}/commands/{command_id}/reply?token={token}"


def fit_reply(rt: Runtime, command_id: int, reply: str) -> str:
    """The reply as GitHub will take it: cut, with a link to all of it, when it is too long."""
    return markdown.cut(
        reply,
        MAX_REPLY_CHARS,
        f"_This reply is longer than GitHub shows; [read all of it]({reply_url(rt, command_id)})._",
    )


async def full_reply(rt: Runtime, command_id: int, token: str) -> str | None:
    """The whole reply to a command, if `token` is the signed link to it."""
    try:
        if rt.signer.verify(REPLY_LINK_PURPOSE, token) != f"command:{command_id}":
            return None
    except InvalidToken:
        return None
    async with engine.connection() as connection:
        row = await connection.fetchrow("SELECT reply FROM command WHERE id = $1", command_id)
    return str(row["reply"]) if row is not None and row["reply"] else None


@dataclass(frozen=True)
class Unanswered:
    """A command whose answer has not reached GitHub yet, and the error that keeps it so."""

    id: int
    delivery_guid: str
    repository: str
    issue_number: int
    line: str
    state: str
    last_error: str
    created_at: datetime


async def unanswered(limit: int = 50) -> list[Unanswered]:
    """Commands still being retried (or given up) without an answer on GitHub, and those of the
    same comment waiting behind them, newest first."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            """
            SELECT id, delivery_guid, repository, issue_number, line, state, created_at,
                coalesce(last_error, 'waiting for the command written before it') AS last_error
            FROM command AS c
            WHERE answered_at IS NULL AND (
                last_error IS NOT NULL OR EXISTS (
                    SELECT 1 FROM command AS earlier
                    WHERE earlier.delivery_guid = c.delivery_guid
                      AND earlier.position < c.position
                      AND earlier.answered_at IS NULL AND earlier.last_error IS NOT NULL
                )
            )
            ORDER BY created_at DESC, position DESC LIMIT $1
            """,
            limit,
        )
    return [Unanswered(**dict(row)) for row in rows]
