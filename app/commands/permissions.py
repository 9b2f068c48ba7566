"""Repository permission levels and the commenter's level, asked of GitHub at event time and
cached for a minute per (repository, user)."""

from __future__ import annotations

import time
from enum import IntEnum

from githubkit import GitHub
from githubkit.exception import RequestFailed

from app.github.clients import api_headers

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

    async def level(self, client: GitHub, repository: str, login: str) -> Permission:
        key = (repository.lower(), login.lower())
        cached = self._entries.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        owner, name = repository.split("/", 1)
        try:
            response = await client.arequest(
                "GET",
                f"/repos/{owner}/{name}/collaborators/{login}/permission",
                headers=api_headers(),
            )
        except RequestFailed as exc:
            if exc.response.status_code != 404:
                raise
            level = Permission.NONE
        else:
            data = response.json()
            level = _ROLE_NAMES.get(str(data.get("role_name", "")).lower()) or _ROLE_NAMES.get(
                str(data.get("permission", "none")).lower(), Permission.NONE
            )
        self._entries[key] = (now, level)
        if len(self._entries) > 10_000:
            self._entries.clear()
        return level
