"""Repository permission levels and the commenter's level, asked of GitHub at event time and
cached for a minute per (repository, user) in Postgres (`github_permission`), so that replicas
share what one of them asked. The cache is read and written on a connection of its own: a
caller's transaction neither waits for another's entry nor loses its own on rollback."""

from __future__ import annotations

from datetime import timedelta
from enum import IntEnum

from githubkit import GitHub

from app.db import engine
from app.github import rest
from app.github.repo import Repo

CACHE_TTL = timedelta(minutes=1)
# Entries long expired are deleted when a new one is stored.
_PRUNE_AFTER = timedelta(minutes=10)


class Permission(IntEnum):
    NONE = 0
    READ = 1
    TRIAGE = 2
    WRITE = 3
    MAINTAIN = 4
    ADMIN = 5

    @classmethod
    def parse(cls, name: str) -> Permission:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown permission {name!r}; use read, triage, write, maintain or admin"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


# GitHub's `permission` field folds maintain into write and triage into read; `role_name` is
# precise for the built-in roles. Custom roles fall back to `permission`.
_ROLE_NAMES = {p.label: p for p in Permission}


class PermissionCache:
    async def level(self, client: GitHub, repository: Repo | str, login: str) -> Permission:
        key, user = Repo.of(repository).key, login.lower()
        async with engine.autonomous_connection() as connection:
            cached = await connection.fetchval(
                "SELECT permission FROM github_permission WHERE repository = $1 AND login = $2 "
                "AND fetched_at > clock_timestamp() - $3::interval",
                key,
                user,
                CACHE_TTL,
            )
        if cached is not None:
            return Permission(cached)
        data = await rest.collaborator_permission(client, repository, login)
        level = Permission.NONE
        if data is not None:
            level = _ROLE_NAMES.get(str(data.get("role_name", "")).lower()) or _ROLE_NAMES.get(
                str(data.get("permission", "none")).lower(), Permission.NONE
            )
        async with engine.autonomous_connection() as connection:
            await connection.execute(
                "WITH pruned AS (DELETE FROM github_permission "
                "WHERE fetched_at < clock_timestamp() - $4::interval "
                "AND (repository, login) <> ($1, $2)) "
                "INSERT INTO github_permission (repository, login, permission, fetched_at) "
                "VALUES ($1, $2, $3, clock_timestamp()) ON CONFLICT (repository, login) "
                "DO UPDATE SET permission = EXCLUDED.permission, fetched_at = EXCLUDED.fetched_at",
                key,
                user,
                int(level),
                _PRUNE_AFTER,
            )
        return level
