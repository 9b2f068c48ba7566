"""Repository permission levels and the commenter's level, asked of GitHub at event time and
cached for a minute per (repository, user)."""

from __future__ import annotations

import time
from enum import IntEnum

from githubkit import GitHub

from app.github import rest
from app.github.repo import Repo

CACHE_SECONDS = 60.0


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
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, Permission]] = {}

    async def level(self, client: GitHub, repository: Repo | str, login: str) -> Permission:
        key = (Repo.of(repository).key, login.lower())
        cached = self._entries.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        data = await rest.collaborator_permission(client, repository, login)
        level = Permission.NONE
        if data is not None:
            level = _ROLE_NAMES.get(str(data.get("role_name", "")).lower()) or _ROLE_NAMES.get(
                str(data.get("permission", "none")).lower(), Permission.NONE
            )
        self._entries[key] = (now, level)
        if len(self._entries) > 10_000:
            self._entries.clear()
        return level
