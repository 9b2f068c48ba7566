"""The installation tables follow the `installation` and `installation_repositories` webhooks."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from app.db import engine
from app.server import create_app
from tests.harness import drain
from tests.webhooks import example, signed


@pytest.fixture
async def post(rt, database, github):
    async with AsyncTestClient(create_app(rt, dsn=database, run_worker=False)) as client:

        async def send(event: str, payload: dict) -> None:
            body, headers = signed(github.webhook_secret, event, payload)
            response = await client.post("/webhooks/github", content=body, headers=headers)
            assert response.status_code == 202, response.text
            await drain(rt)

        yield send


async def fetch(query: str, *args):
    async with engine.connection() as connection:
        return [dict(row) for row in await connection.fetch(query, *args)]


async def test_created_records_the_installation_and_its_repositories(post):
    await post("installation", example("installation/created"))

    assert await fetch("SELECT id, account_login, account_type, deleted_at FROM installation") == [
        {"id": 957387, "account_login": "Codertocat", "account_type": "User", "deleted_at": None}
    ]
    assert await fetch("SELECT full_name, removed_at FROM repository") == [
        {"full_name": "Codertocat/Hello-World", "removed_at": None}
    ]


async def test_repositories_added_and_removed(post):
    await post("installation", example("installation/created"))
    await post("installation_repositories", example("installation_repositories/added"))
    removed = example("installation_repositories/removed")
    removed["installation"] = example("installation/created")["installation"]
    removed["repositories_removed"] = [{"id": 1296269, "full_name": "Codertocat/Hello-World"}]
    await post("installation_repositories", removed)

    rows = await fetch("SELECT full_name, removed_at IS NULL AS active FROM repository ORDER BY 1")
    assert rows == [
        {"full_name": "Codertocat/Hello-World", "active": False},
        {"full_name": "Codertocat/Space", "active": True},
    ]


async def test_suspend_unsuspend_and_delete(post):
    created = example("installation/created")
    await post("installation", created)

    await post("installation", {**created, "action": "suspend"})
    assert (await fetch("SELECT suspended_at IS NOT NULL AS s FROM installation"))[0]["s"] is True

    await post("installation", {**created, "action": "unsuspend"})
    assert (await fetch("SELECT suspended_at IS NOT NULL AS s FROM installation"))[0]["s"] is False

    await post("installation", {**created, "action": "deleted"})
    assert (await fetch("SELECT deleted_at IS NOT NULL AS d FROM installation"))[0]["d"] is True
    assert (await fetch("SELECT removed_at IS NOT NULL AS r FROM repository"))[0]["r"] is True


async def test_every_change_is_audited_with_its_delivery(post):
    await post("installation", example("installation/created"))

    rows = await fetch("SELECT actor, action, target, delivery_guid FROM audit_log")
    assert len(rows) == 1
    assert rows[0]["action"] == "installation.created"
    assert rows[0]["actor"] == "Codertocat"
    assert rows[0]["delivery_guid"]
