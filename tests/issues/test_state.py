"""The label rules hold however maintainers move labels: one status, one priority, done on close,
ready on reopen; the label set exists in every repository; every change is audited."""

from __future__ import annotations

from app.db import engine
from app.issues.labels import LABEL_SET
from tests.harness import drain
from tests.webhooks import for_repo, signed


def labeled(github, repo, issue, label, *, sender="alice", labels_at_event=None):
    installation, repository = repo
    payload = for_repo("issues/labeled", installation, repository)
    names = (
        labels_at_event
        if labels_at_event is not None
        else github.label_names(repository, issue["number"])
    )
    payload["issue"] = {
        **payload["issue"],
        "number": issue["number"],
        "labels": [{"name": n} for n in names],
    }
    payload["label"] = {**payload["label"], "name": label}
    payload["sender"] = {**payload["sender"], "login": sender}
    return payload


def add_on_github(github, repository, number, label):
    """A person adds a label on github.com (the fake records it like GitHub would)."""
    github.add_label_to_issue(repository, number, label)


async def audit_actions():
    async with engine.connection() as connection:
        rows = await connection.fetch("SELECT action, outcome FROM audit_log ORDER BY id")
    return [(r["action"], r["outcome"]) for r in rows]


async def test_installing_creates_the_missing_labels_and_keeps_existing_ones(github, deliver):
    installation = github.add_installation("octo-org", "Organization")
    repository = github.add_repo(installation, "octo-org/widgets")
    github.add_label(repository, "type/bug", color="000000", description="ours, not yours")
    payload = for_repo("installation/created", installation, repository)
    payload["installation"]["id"] = installation
    payload["repositories"] = [
        {k: repository[k] for k in ("id", "node_id", "name", "full_name", "private")}
    ]

    await deliver("installation", payload)

    labels = {label["name"]: label for label in github.repo_labels(repository)}
    assert {spec.name for spec in LABEL_SET} <= set(labels)
    assert labels["type/bug"]["color"] == "000000"
    assert labels["type/bug"]["description"] == "ours, not yours"
    assert labels["status/ready"]["color"] == "0e8a16"
    assert not github.calls_to("PATCH", r"/labels/")
    assert not github.calls_to("DELETE", r"/repos/[^/]+/[^/]+/labels/")


async def test_a_second_status_label_replaces_the_first(github, repo, deliver):
    issue = github.add_issue(repo[1], "t", labels=["status/backlog", "priority/p2"])
    add_on_github(github, repo[1], issue["number"], "status/ready")

    await deliver("issues", labeled(github, repo, issue, "status/ready"))

    assert sorted(github.label_names(repo[1], issue["number"])) == ["priority/p2", "status/ready"]
    assert github.calls_to("DELETE", r"/issues/\d+/labels/status%2Fbacklog")
    assert not github.calls_to("PUT", r"/labels")
    assert ("label.remove", "done") in await audit_actions()


async def test_priorities_are_exclusive_too(github, repo, deliver):
    issue = github.add_issue(repo[1], "t", labels=["priority/p3"])
    add_on_github(github, repo[1], issue["number"], "priority/p0")

    await deliver("issues", labeled(github, repo, issue, "priority/p0"))

    assert github.label_names(repo[1], issue["number"]) == ["priority/p0"]


async def test_two_people_two_status_labels_end_with_exactly_one(rt, github, repo, client):
    issue = github.add_issue(repo[1], "t", labels=["status/backlog"])
    add_on_github(github, repo[1], issue["number"], "status/ready")
    first = labeled(github, repo, issue, "status/ready", sender="alice")
    add_on_github(github, repo[1], issue["number"], "status/in-progress")
    second = labeled(github, repo, issue, "status/in-progress", sender="bob")

    # Both arrive before either is processed, and are processed concurrently.
    for payload in (first, second):
        body, headers = signed(github.webhook_secret, "issues", payload)
        assert (
            await client.post("/webhooks/github", content=body, headers=headers)
        ).status_code == 202
    await drain(rt, concurrency=4)

    statuses = [n for n in github.label_names(repo[1], issue["number"]) if n.startswith("status/")]
    assert statuses == ["status/in-progress"]


async def test_processing_order_does_not_change_the_winner(rt, github, repo, client):
    issue = github.add_issue(repo[1], "t", labels=[])
    add_on_github(github, repo[1], issue["number"], "status/ready")
    first = labeled(github, repo, issue, "status/ready")
    add_on_github(github, repo[1], issue["number"], "status/in-progress")
    second = labeled(github, repo, issue, "status/in-progress")

    for payload in (second, first):  # the later event is processed first
        body, headers = signed(github.webhook_secret, "issues", payload)
        await client.post("/webhooks/github", content=body, headers=headers)
        await drain(rt)

    assert github.label_names(repo[1], issue["number"]) == ["status/in-progress"]


async def test_close_sets_done_and_reopen_sets_ready(github, repo, deliver):
    installation, repository = repo
    issue = github.add_issue(repository, "t", labels=["status/in-progress"])
    payload = for_repo("issues/reopened", installation, repository, action="closed")
    payload["issue"] = {**payload["issue"], "number": issue["number"], "state": "closed"}

    await deliver("issues", payload)
    assert github.label_names(repository, issue["number"]) == ["status/done"]

    payload = for_repo("issues/reopened", installation, repository)
    payload["issue"] = {**payload["issue"], "number": issue["number"]}
    await deliver("issues", payload)
    assert github.label_names(repository, issue["number"]) == ["status/ready"]


async def test_dispatchs_own_label_changes_do_not_loop(github, repo, deliver):
    issue = github.add_issue(repo[1], "t", labels=["status/backlog", "status/ready"])

    await deliver(
        "issues", labeled(github, repo, issue, "status/ready", sender=f"{github.app_slug}[bot]")
    )

    assert sorted(github.label_names(repo[1], issue["number"])) == [
        "status/backlog",
        "status/ready",
    ]
    assert not github.calls_to("DELETE", r"/labels/")
