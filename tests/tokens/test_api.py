"""API tokens: shown once, stored hashed, scoped; the read API answers only with a valid token
and only for the token's repositories."""

from __future__ import annotations

from app.db import engine
from app.issues import onboarding
from app.tokens import service


async def seed(rt, github, repo):
    installation, repository = repo
    github.add_issue(repository, "ready bug", labels=["status/ready", "type/bug", "priority/p1"])
    github.add_issue(repository, "backlog", labels=["status/backlog", "customer/acme"])
    github.add_issue(repository, "urgent", labels=["status/ready", "priority/p0"])
    other = github.add_repo(installation, "octo-org/secret")
    github.add_issue(other, "hidden", labels=["status/ready"])
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    await onboarding.onboard(rt, installation, "octo-org/secret")


async def test_tokens_are_stored_as_hashes_only(database):
    token = await service.create("ci", "agent", ["octo-org/widgets"])
    async with engine.connection() as connection:
        stored = await connection.fetchval("SELECT token_hash FROM api_token")
    assert token.startswith("dsp_") and token not in stored
    assert stored == service.digest(token)
    assert (await service.authenticate(token)).name == "ci"
    assert await service.revoke("ci")
    assert await service.authenticate(token) is None


async def test_issues_api_filters_and_orders_by_priority(rt, github, repo, client):
    await seed(rt, github, repo)
    token = await service.create("ops", "admin", [])
    headers = {"authorization": f"Bearer {token}"}

    ready = await client.get(
        "/api/issues", params={"repo": "octo-org/widgets", "status": "ready"}, headers=headers
    )
    assert ready.status_code == 200
    assert [i["title"] for i in ready.json()["issues"]] == ["urgent", "ready bug"]

    by_customer = await client.get("/api/issues", params={"customer": "acme"}, headers=headers)
    assert [i["title"] for i in by_customer.json()["issues"]] == ["backlog"]

    everything = await client.get("/api/issues", params={"per_page": 2}, headers=headers)
    assert everything.json()["total"] == 4 and len(everything.json()["issues"]) == 2


async def test_issues_api_refuses_without_a_token_and_outside_its_repos(rt, github, repo, client):
    await seed(rt, github, repo)
    scoped = await service.create("harness", "agent", ["octo-org/widgets"])

    assert (await client.get("/api/issues")).status_code == 401
    bad = await client.get("/api/issues", headers={"authorization": "Bearer dsp_nope"})
    assert bad.status_code == 401 and "unknown or revoked" in bad.json()["error"]
    outside = await client.get(
        "/api/issues",
        params={"repo": "octo-org/secret"},
        headers={"authorization": f"Bearer {scoped}"},
    )
    assert outside.status_code == 403
    mine = await client.get("/api/issues", headers={"authorization": f"Bearer {scoped}"})
    assert {i["repository"] for i in mine.json()["issues"]} == {"octo-org/widgets"}


async def test_audit_api(rt, github, repo, client):
    await seed(rt, github, repo)
    token = await service.create("ops", "admin", [])
    headers = {"authorization": f"Bearer {token}"}

    response = await client.get("/api/audit", params={"repo": "octo-org/widgets"}, headers=headers)

    assert response.status_code == 200
    assert any(entry["action"] == "labels.create" for entry in response.json()["entries"])
    assert (await client.get("/api/audit")).status_code == 401


async def test_agent_tokens_cannot_read_the_audit_trail(rt, github, repo, client):
    await seed(rt, github, repo)
    agent = await service.create("harness", "agent", ["octo-org/widgets"])

    response = await client.get(
        "/api/audit",
        params={"repo": "octo-org/widgets"},
        headers={"authorization": f"Bearer {agent}"},
    )

    assert response.status_code == 403


async def test_audit_repo_is_an_exact_name_not_a_pattern(rt, github, repo, client):
    await seed(rt, github, repo)
    token = await service.create("ops", "admin", [])

    response = await client.get(
        "/api/audit", params={"repo": "%"}, headers={"authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200 and response.json()["entries"] == []
