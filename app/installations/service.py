"""Recording installations and their repositories. Every function is idempotent: replaying a
delivery leaves the tables as they were."""

from __future__ import annotations

from typing import Any

from app.clock import parse_timestamp
from app.db import engine


async def upsert_installation(installation: dict[str, Any]) -> None:
    account = installation.get("account") or {}
    async with engine.connection() as connection:
        await connection.execute(
            """
            INSERT INTO installation (id, account_login, account_type, account_id,
                repository_selection, permissions, events, suspended_at, deleted_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)
            ON CONFLICT (id) DO UPDATE SET
                account_login = EXCLUDED.account_login,
                account_type = EXCLUDED.account_type,
                account_id = EXCLUDED.account_id,
                repository_selection = EXCLUDED.repository_selection,
                permissions = EXCLUDED.permissions,
                events = EXCLUDED.events,
                suspended_at = EXCLUDED.suspended_at,
                deleted_at = NULL,
                updated_at = now()
            """,
            installation["id"],
            account.get("login") or account.get("slug") or "unknown",
            account.get("type") or installation.get("target_type") or "User",
            account.get("id"),
            installation.get("repository_selection"),
            installation.get("permissions") or {},
            installation.get("events") or [],
            parse_timestamp(installation.get("suspended_at")),
        )


async def mark_deleted(installation_id: int) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE installation SET deleted_at = now(), updated_at = now() WHERE id = $1",
            installation_id,
        )
        await connection.execute(
            "UPDATE repository SET removed_at = now(), updated_at = now() "
            "WHERE installation_id = $1 AND removed_at IS NULL",
            installation_id,
        )


async def set_suspended(installation_id: int, suspended: bool) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE installation SET suspended_at = CASE WHEN $2 THEN now() END, "
            "updated_at = now() WHERE id = $1",
            installation_id,
            suspended,
        )


async def add_repositories(installation_id: int, repositories: list[dict[str, Any]]) -> None:
    if not repositories:
        return
    async with engine.connection() as connection:
        await connection.executemany(
            """
            INSERT INTO repository (id, installation_id, full_name, private, removed_at)
            VALUES ($1, $2, $3, $4, NULL)
            ON CONFLICT (id) DO UPDATE SET
                installation_id = EXCLUDED.installation_id,
                full_name = EXCLUDED.full_name,
                private = EXCLUDED.private,
                removed_at = NULL,
                updated_at = now()
            """,
            [
                (repo["id"], installation_id, repo["full_name"], bool(repo.get("private")))
                for repo in repositories
            ],
        )


async def remove_repositories(installation_id: int, repositories: list[dict[str, Any]]) -> None:
    if not repositories:
        return
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE repository SET removed_at = now(), updated_at = now() "
            "WHERE installation_id = $1 AND id = ANY($2::bigint[])",
            installation_id,
            [repo["id"] for repo in repositories],
        )


async def active_repositories(installation_id: int | None = None) -> list[dict[str, Any]]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT r.id, r.installation_id, r.full_name, r.default_branch FROM repository r "
            "JOIN installation i ON i.id = r.installation_id "
            "WHERE r.removed_at IS NULL AND i.deleted_at IS NULL "
            "AND ($1::bigint IS NULL OR r.installation_id = $1) ORDER BY r.full_name",
            installation_id,
        )
    return [dict(row) for row in rows]


async def is_public(repository_id: int) -> bool:
    """Whether a repository is public (anyone can read its issues and comments). Unknown
    repositories count as public: the safer guess."""
    async with engine.connection() as connection:
        private = await connection.fetchval(
            "SELECT private FROM repository WHERE id = $1", repository_id
        )
    return not private


async def repository_by_name(full_name: str) -> dict[str, Any] | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT r.id, r.installation_id, r.full_name, r.default_branch FROM repository r "
            "WHERE lower(r.full_name) = lower($1) AND r.removed_at IS NULL",
            full_name,
        )
    return dict(row) if row else None


async def is_installed(installation_id: int) -> bool:
    """Whether the App is installed (and not uninstalled) on this installation id."""
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM installation WHERE id = $1 AND deleted_at IS NULL", installation_id
            )
        )


async def repository_ids(installation_id: int) -> list[int]:
    """Ids of the repositories the installation currently gives the App."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT r.id FROM repository r JOIN installation i ON i.id = r.installation_id "
            "WHERE r.installation_id = $1 AND r.removed_at IS NULL AND i.deleted_at IS NULL",
            installation_id,
        )
    return [row["id"] for row in rows]
