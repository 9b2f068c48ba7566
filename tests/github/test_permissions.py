"""The commenter-permission cache (`app/github/permissions.py`): one entry per (repository,
user) in Postgres, shared by every process, for a minute."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.db import engine
from app.github.clients import GitHubClients
from app.github.credentials import CredentialStore
from app.github.permissions import Permission, PermissionCache
from tests.conftest import make_settings

REPO = "octo-org/widgets"
ASKED = r"/collaborators/[^/]+/permission$"


@pytest.fixture
async def clients(tmp_path, github, database) -> AsyncIterator[GitHubClients]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, github)
    built = GitHubClients(settings, CredentialStore(settings))
    try:
        yield built
    finally:
        await built.close()


async def test_a_permission_one_process_asked_for_is_not_asked_again_by_another(
    clients, github, repo
):
    github.set_permission(REPO, "alice", "maintain")
    gh = clients.installation(repo[0])

    first = await PermissionCache().level(gh, REPO, "alice")
    second = await PermissionCache().level(gh, "Octo-Org/Widgets", "ALICE")

    assert first == second == Permission.MAINTAIN
    assert len(github.calls_to("GET", ASKED)) == 1


async def test_a_cached_permission_is_asked_again_after_a_minute(clients, github, repo):
    github.set_permission(REPO, "alice", "write")
    gh = clients.installation(repo[0])
    await PermissionCache().level(gh, REPO, "alice")
    github.set_permission(REPO, "alice", "read")
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE github_permission SET fetched_at = fetched_at - interval '61 seconds'"
        )

    level = await PermissionCache().level(gh, REPO, "alice")

    assert level == Permission.READ
    assert len(github.calls_to("GET", ASKED)) == 2


async def test_people_who_are_not_collaborators_are_cached_too(clients, github, repo):
    gh = clients.installation(repo[0])

    levels = [await PermissionCache().level(gh, REPO, "mallory") for _ in range(3)]

    assert levels == [Permission.READ] * 3  # a public repository: anyone reads
    assert len(github.calls_to("GET", ASKED)) == 1
