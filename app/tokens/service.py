"""Creating, listing, revoking and checking API tokens.

Tokens are 256-bit random strings, so a plain SHA-256 is the right hash (no password stretching
needed); the lookup is by hash and the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.db import engine
from app.github.repo import InvalidRepo, Repo

PREFIX = "dsp_"

# Each scope allows everything the scopes before it allow:
#   read      lists and reads issues, runs, logs, search and the fleet;
#   agent     also claims issues, registers the runs it starts itself and reports on runs
#             (events, logs, plans, blockers, comments);
#   dispatch  also creates and edits issues and dispatches agent runs;
#   admin     everything, including endpoints meant for operators only.
SCOPES = ("read", "agent", "dispatch", "admin")
READ, AGENT, DISPATCH, ADMIN = SCOPES


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    scope: str
    repositories: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def permits(self, scope: str) -> bool:
        """Whether this token's scope includes `scope`."""
        return SCOPES.index(self.scope) >= SCOPES.index(scope)

    @property
    def actor(self) -> str:
        """Who the audit trail says acted: the token's name, marked as a token so it is never
        mistaken for a GitHub login (and never rendered as an @-mention)."""
        return f"token:{self.name}"

    def allows(self, repository: Repo | str) -> bool:
        """An empty repository list means every repository the App is installed on."""
        if not self.repositories:
            return True
        try:
            wanted = Repo.of(repository)
        except InvalidRepo:
            return False
        return any(Repo.parse(allowed) == wanted for allowed in self.repositories)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(name: str, scope: str, repositories: list[str]) -> str:
    """Create a token and return it; it is never retrievable again."""
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}")
    try:
        keys = [Repo.parse(repo).key for repo in repositories]
    except InvalidRepo as exc:
        raise TokenError(str(exc)) from None
    if not name.strip():
        raise TokenError("a token needs a name")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        async with engine.connection() as connection:
            await connection.execute(
                "INSERT INTO api_token (name, token_hash, scope, repositories) "
                "VALUES ($1, $2, $3, $4)",
                name.strip(),
                digest(token),
                scope,
                keys,
            )
    except asyncpg.UniqueViolationError:
        raise TokenError(f"a token named {name!r} exists; revoke it or pick another name") from None
    return token


async def list_all() -> list[ApiToken]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT id, name, scope, repositories, created_at, last_used_at, revoked_at "
            "FROM api_token ORDER BY name"
        )
    return [ApiToken(**dict(row)) for row in rows]


async def revoke(name: str) -> bool:
    async with engine.connection() as connection:
        found = await connection.fetchval(
            "UPDATE api_token SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
            "RETURNING id",
            name,
        )
    return found is not None


async def authenticate(token: str) -> ApiToken | None:
    """The live token matching `token`, or None."""
    if not token.startswith(PREFIX):
        return None
    hashed = digest(token)
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT id, name, scope, repositories, created_at, last_used_at, revoked_at, "
            "token_hash FROM api_token WHERE token_hash = $1",
            hashed,
        )
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["token_hash"], hashed):
            return None
        await connection.execute(
            "UPDATE api_token SET last_used_at = now() WHERE id = $1 "
            "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            row["id"],
        )
    data = dict(row)
    data.pop("token_hash")
    return ApiToken(**data)
