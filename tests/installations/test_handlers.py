"""The installation tables follow the `installation` and `installation_repositories` webhooks."""

from __future__ import annotations

import pytest

from app.db import engine
from tests.webhooks import example


@pytest.fixture
def post(deliver):
    return deliver


@pytest.fixture
def installed(github):
    """The fixture's installation and repositories, as the fake GitHub knows them."""
    installation = github.add_installation("Codertocat", "User")
    hello = github.add_repo(installation, "Codertocat/Hello-World")
    space = github.add_repo(installation, "Codertocat/Space")
    return installation, hello, space


def created_payload(installed) -> dict:
    installation, hello, _ = installed
    payload = example("installation/created")
    payload["installation"]["id"] = installation
    payload["repositories"] = [_short(hello)]
    return payload


def _short(repo: dict) -> dict:
    return {k: repo[k] for k in ("id", "node_id", "name", "full_name", "private")}


async def fetch(query: str, *args):
    async with engine.connection() as connection:
        return [dict(row) for row in await connection.fetch(query, *args)]


async def test_created_records_the_installation_and_its_repositories(post, installed):
    await post("installation", created_payload(installed))

    assert await fetch("SELECT id, account_login, account_type, deleted_at FROM installation") == [
        {
            "id": installed[0],
            "account_login": "Codertocat",
            "account_type": "User",
            "deleted_at": None,
        }
    ]
    assert await fetch("SELECT full_name, removed_at FROM repository") == [
        {"full_name": "Codertocat/Hello-World", "removed_at": None}
    ]


async def test_repositories_added_and_removed(post, installed):
    created = created_payload(installed)
    await post("installation", created)
    added = example("installation_repositories/added")
    added["installation"] = created["installation"]
    added["repositories_added"] = [_short(installed[2])]
    await post("installation_repositories", added)
    removed = example("installation_repositories/removed")
    removed["installation"] = created["installation"]
    removed["repositories_removed"] = [_short(installed[1])]
    await post("installation_repositories", removed)

    rows = await fetch("SELECT full_name, removed_at IS NULL AS active FROM repository ORDER BY 1")
    assert rows == [
        {"full_name": "Codertocat/Hello-World", "active": False},
        {"full_name": "Codertocat/Space", "active": True},
    ]


async def test_suspend_unsuspend_and_delete(post, installed):
    created = created_payload(installed)
    await post("installation", created)

    await post("installation", {**created, "action": "suspend"})
    assert (await fetch("SELECT suspended_at IS NOT NULL AS s FROM installation"))[0]["s"] is True

    await post("installation", {**created, "action": "unsuspend"})
    assert (await fetch("SELECT suspended_at IS NOT NULL AS s FROM installation"))[0]["s"] is False

    await post("installation", {**created, "action": "deleted"})
    assert (await fetch("SELECT deleted_at IS NOT NULL AS d FROM installation"))[0]["d"] is True
    assert (await fetch("SELECT removed_at IS NOT NULL AS r FROM repository"))[0]["r"] is True


async def test_every_change_is_audited_with_its_delivery(post, installed):
    await post("installation", created_payload(installed))

    rows = await fetch(
        "SELECT actor, action, target, delivery_guid FROM audit_log WHERE action LIKE 'installation%'"
    )
    assert len(rows) == 1
    assert rows[0]["action"] == "installation.created"
    assert rows[0]["actor"] == "Codertocat"
    assert rows[0]["delivery_guid"]
