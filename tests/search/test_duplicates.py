"""A duplicate report is pointed at its original before anyone spends an agent on it: a real
`issues.opened` payload, the local embedding model, pgvector's HNSW index, the reply and label
at the fake GitHub; `/dispatch similar` lists neighbours. Other issues' titles are shown so that
they cannot mention, link or embed anything."""

from __future__ import annotations

import pytest

from app.issues import onboarding
from app.search import indexing
from tests.agents.loop import comment
from tests.conftest import make_settings
from tests.security.rendered import assert_renders_harmless
from tests.webhooks import for_repo


@pytest.fixture
def settings(tmp_path, github, oidc):
    return make_settings(
        tmp_path, github, dispatch_oidc_issuer=oidc.url, dispatch_embeddings="local"
    )


async def test_a_reworded_duplicate_gets_pointed_at_the_original(rt, github, repo, deliver):
    installation, repository = repo
    original = github.add_issue(
        repository,
        "Password reset email never arrives",
        "I clicked 'forgot password' three times and no email came, not even in spam.",
    )
    github.add_issue(
        repository, "Dark mode for the dashboard", "Please add a dark theme to the admin dashboard."
    )
    github.add_issue(
        repository,
        "CSV export misses the last row",
        "Exporting orders to CSV drops the final order.",
    )
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    assert await indexing.backfill(rt) == 3

    new = github.add_issue(
        repository,
        "Can't reset my password",
        "The reset link email doesn't show up in my inbox at all.",
    )
    payload = for_repo("issues/opened", installation, repository)
    payload["issue"] = {**payload["issue"], **github.issue(repository, new["number"])}
    await deliver("issues", payload)

    [reply] = github.bot_comments(repository, new["number"])
    assert f"possible duplicate of #{original['number']}" in reply
    assert "dispatch/possible-duplicate" in github.label_names(repository, new["number"])


async def test_unrelated_new_issue_gets_no_reply(rt, github, repo, deliver):
    installation, repository = repo
    github.add_issue(
        repository, "Password reset email never arrives", "No email after forgot password."
    )
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    await indexing.backfill(rt)

    new = github.add_issue(
        repository, "Add PayPal as a payment method", "Customers in Germany ask for PayPal."
    )
    payload = for_repo("issues/opened", installation, repository)
    payload["issue"] = {**payload["issue"], **github.issue(repository, new["number"])}
    await deliver("issues", payload)

    assert github.bot_comments(repository, new["number"]) == []


async def test_similar_lists_the_nearest_issues(rt, github, repo, deliver):
    installation, repository = repo
    titles = [
        "Checkout button does nothing on Safari",
        "Checkout page is blank on iOS",
        "Logo is blurry",
    ]
    issues = [github.add_issue(repository, t, t) for t in titles]
    await onboarding.onboard(rt, installation, "octo-org/widgets")

    await deliver("issue_comment", comment(github, repo, issues[0]["number"], "/dispatch similar"))

    [answer] = github.bot_comments(repository, issues[0]["number"])
    lines = [line for line in answer.splitlines() if line.startswith("- #")]
    assert lines[0].startswith(f"- #{issues[1]['number']} Checkout page is blank on iOS")
    assert len(lines) == 2


HOSTILE_TITLE = (
    "Password reset email never arrives @team ![x](https://evil.example/p.png) "
    "[y](https://evil.example) www.evil.example"
)


async def test_a_hostile_title_is_shown_harmless_in_a_duplicate_reply(rt, github, repo, deliver):
    installation, repository = repo
    original = github.add_issue(
        repository,
        HOSTILE_TITLE,
        "I clicked 'forgot password' three times and no email came, not even in spam.",
    )
    github.add_issue(
        repository, "Dark mode for the dashboard", "Please add a dark theme to the admin dashboard."
    )
    github.add_issue(
        repository,
        "CSV export misses the last row",
        "Exporting orders to CSV drops the final order.",
    )
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    await indexing.backfill(rt)

    new = github.add_issue(
        repository,
        "Can't reset my password",
        "The reset link email doesn't show up in my inbox at all.",
    )
    payload = for_repo("issues/opened", installation, repository)
    payload["issue"] = {**payload["issue"], **github.issue(repository, new["number"])}
    await deliver("issues", payload)

    [reply] = github.bot_comments(repository, new["number"])
    assert f"possible duplicate of #{original['number']}" in reply
    html = assert_renders_harmless(reply)
    assert "Password reset email never arrives" in html


async def test_a_hostile_title_is_shown_harmless_by_similar(rt, github, repo, deliver):
    installation, repository = repo
    titles = ["Checkout button does nothing on Safari", f"Checkout page is blank {HOSTILE_TITLE}"]
    issues = [github.add_issue(repository, t, t) for t in titles]
    await onboarding.onboard(rt, installation, "octo-org/widgets")

    await deliver("issue_comment", comment(github, repo, issues[0]["number"], "/dispatch similar"))

    [answer] = github.bot_comments(repository, issues[0]["number"])
    assert f"- #{issues[1]['number']} Checkout page is blank" in answer
    # The one who asked (alice) may be @mentioned by Dispatch; nobody from the title is.
    assert_renders_harmless(answer, mentions=("alice",))
