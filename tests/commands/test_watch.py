"""`/dispatch watch <customer>` and `/dispatch unwatch <customer>`: the `customer/<slug>` label,
created in the customer's colour, audited; helpful refusals; and the label set by hand does the
same for the portal."""

from __future__ import annotations

import pytest

from app.db import engine
from app.installations import service as installations
from app.issues import repo_config
from app.portal import customers
from tests.commands.test_commands import comment_payload
from tests.webhooks import for_repo


@pytest.fixture
async def acme(database, github, repo):
    installation, repository = repo
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    github.set_permission(repository, "tina", "triage")
    github.set_permission(repository, "rita", "read")
    customer, token = await customers.create(
        installation, "Acme Corp", slug="acme", color="#d73a4a"
    )
    return customer, token


@pytest.fixture
def issue(github, repo):
    return github.add_issue(repo[1], "Export is slow", labels=["status/ready"])


async def say(github, repo, issue, deliver, text, user="tina"):
    payload, comment_id = comment_payload(github, repo, issue, text, user=user)
    await deliver("issue_comment", payload)
    return github.bot_comments(repo[1], issue["number"])[-1], github.reactions(repo[1], comment_id)


async def test_watch_adds_the_label_in_the_customers_colour_and_is_audited(
    github, repo, issue, deliver, acme
):
    answer, reactions = await say(github, repo, issue, deliver, "/dispatch watch acme")

    assert "customer/acme" in github.label_names(repo[1], issue["number"])
    label = next(x for x in github.repo_labels(repo[1]) if x["name"] == "customer/acme")
    assert label["color"] == "d73a4a"
    assert "Acme Corp now follows this issue" in answer and "+1" in reactions
    async with engine.connection() as connection:
        actions = await connection.fetch(
            "SELECT action, actor, outcome FROM audit_log WHERE issue_number = $1 ORDER BY id",
            issue["number"],
        )
    assert [(r["action"], r["actor"]) for r in actions] == [
        ("label.add", "tina"),
        ("command.watch", "tina"),
    ]

    again, _ = await say(github, repo, issue, deliver, "/dispatch watch acme")
    assert "already follows this issue" in again
    assert len(github.calls_to("POST", rf"/issues/{issue['number']}/labels")) == 1


async def test_unwatch_removes_it_and_says_when_there_is_nothing_to_remove(
    github, repo, issue, deliver, acme
):
    await say(github, repo, issue, deliver, "/dispatch watch acme")

    answer, _ = await say(github, repo, issue, deliver, "/dispatch unwatch acme")
    assert "customer/acme" not in github.label_names(repo[1], issue["number"])
    assert "no longer follows" in answer
    async with engine.connection() as connection:
        removal = await connection.fetchrow(
            "SELECT actor, after, reason FROM audit_log"
            " WHERE issue_number = $1 AND action = 'label.remove'",
            issue["number"],
        )
    assert removal is not None, "unwatch left no label.remove entry in the audit trail"
    assert removal["actor"] == "tina" and "customer/acme" in str(removal["after"])
    assert "/dispatch unwatch acme" in removal["reason"]

    answer, reactions = await say(github, repo, issue, deliver, "/dispatch unwatch acme")
    assert "confused" in reactions
    assert "\n> `/dispatch unwatch acme`" in answer and "does not follow it" in answer


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/dispatch watch acmee", "there is no customer `acmee` here. Did you mean `acme`?"),
        ("/dispatch watch Acme_Corp!", "is not a customer slug: 1 to 40 characters"),
        ("/dispatch watch", "needs a customer, e.g. `/dispatch watch acme`"),
    ],
)
async def test_watch_refusals_say_what_to_do(github, repo, issue, deliver, acme, command, expected):
    answer, reactions = await say(github, repo, issue, deliver, command)

    assert "confused" in reactions and expected in answer
    assert not any(x.startswith("customer/") for x in github.label_names(repo[1], issue["number"]))


async def test_watch_needs_triage_unless_the_repository_says_otherwise(
    rt, github, repo, issue, deliver, acme
):
    answer, _ = await say(github, repo, issue, deliver, "/dispatch watch acme", user="rita")
    assert "needs **triage** permission" in answer

    github.add_file(repo[1], ".github/dispatch.yml", "permissions:\n  watch: read\n")
    await repo_config.refresh(rt, repo[0], "octo-org/widgets")
    answer, _ = await say(github, repo, issue, deliver, "/dispatch watch acme", user="rita")
    assert "now follows this issue" in answer


async def test_help_lists_watch_and_unwatch(github, repo, issue, deliver, acme):
    answer, _ = await say(github, repo, issue, deliver, "/dispatch help")

    assert "| `/dispatch watch <customer>` |" in answer and "| triage |" in answer
    assert "`/dispatch unwatch <customer>`" in answer


async def test_the_label_added_by_hand_has_the_same_effect(
    client, github, repo, issue, deliver, acme
):
    _, token = acme
    installation, repository = repo
    github.add_label_to_issue(repository, issue["number"], "customer/acme")
    payload = for_repo("issues/labeled", installation, repository)
    payload["issue"] = github.issue(repository, issue["number"])
    payload["label"] = {**payload["label"], "name": "customer/acme"}

    await deliver("issues", payload)

    board = await client.get(f"/api/portal/acme?token={token}")
    titles = [i["title"] for c in board.json()["columns"] for i in c["issues"]]
    assert titles == ["Export is slow"]
