"""`GET /api/search`: a query finds the issue that means the same thing (local embeddings, HNSW),
or the issues that share its words when embeddings are off; always within the token's
repositories."""

from __future__ import annotations

import pytest

from app.issues import onboarding
from app.search import indexing
from app.tokens import service as tokens
from tests.conftest import make_settings

ISSUES = [
    ("Password reset email never arrives", "I clicked forgot password and no email came."),
    ("Dark mode for the dashboard", "Please add a dark theme to the admin dashboard."),
    ("CSV export misses the last row", "Exporting orders to CSV drops the final order."),
]


async def seed(rt, github, repo):
    installation, repository = repo
    for title, body in ISSUES:
        github.add_issue(repository, title, body)
    other = github.add_repo(installation, "octo-org/secret")
    github.add_issue(other, "Password reset is broken for SSO users", "secret")
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    await onboarding.onboard(rt, installation, "octo-org/secret")
    token = await tokens.create("reader", "read", ["octo-org/widgets"])
    return {"authorization": f"Bearer {token}"}


class TestByMeaning:
    @pytest.fixture
    def settings(self, tmp_path, github, oidc):
        return make_settings(
            tmp_path, github, dispatch_oidc_issuer=oidc.url, dispatch_embeddings="local"
        )

    async def test_a_reworded_query_finds_the_issue(self, rt, github, repo, client):
        headers = await seed(rt, github, repo)
        await indexing.backfill(rt)

        found = await client.get(
            "/api/search",
            params={"q": "I can't log in, the reset link mail is missing"},
            headers=headers,
        )

        assert found.status_code == 200
        data = found.json()
        assert data["method"] == "semantic"
        assert data["issues"][0]["title"] == "Password reset email never arrives"
        assert {i["repository"] for i in data["issues"]} == {"octo-org/widgets"}
        assert data["issues"][0]["score"] > data["issues"][-1]["score"]


async def test_words_when_embeddings_are_off(rt, github, repo, client):
    headers = await seed(rt, github, repo)

    found = await client.get("/api/search", params={"q": "csv export"}, headers=headers)

    assert found.json()["method"] == "words"
    assert [i["title"] for i in found.json()["issues"]] == ["CSV export misses the last row"]
    password = await client.get("/api/search", params={"q": "password"}, headers=headers)
    assert [i["title"] for i in password.json()["issues"]] == ["Password reset email never arrives"]
    empty = await client.get("/api/search", params={"q": "  "}, headers=headers)
    assert empty.status_code == 422 and empty.json()["details"]["field"] == "q"
    outside = await client.get(
        "/api/search", params={"q": "password", "repo": "octo-org/secret"}, headers=headers
    )
    assert outside.status_code == 403
    assert (await client.get("/api/search", params={"q": "x"})).status_code == 401
