"""Health per customer from the cache and what comments' webhooks left behind: open, critical,
stale, critical-stale, unresponded (nobody with write permission, the App or an agent has
commented), last activity, median time to the first team response, and the score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db import engine
from app.issues import repo_config
from app.portal import health
from app.tokens import service as tokens
from tests.harness import drain
from tests.portal.seed import follow
from tests.webhooks import for_repo


def comment_webhook(github, repo, number, user, at, *, user_type="User", labels=("customer/acme",)):
    installation, repository = repo
    posted = github.add_comment(repository, number, "something private", user=user)
    payload = for_repo("issue_comment/created", installation, repository)
    payload["issue"] = {
        **payload["issue"],
        "number": number,
        "labels": [{**payload["issue"]["labels"][0], "name": name} for name in labels]
        if payload["issue"].get("labels")
        else [{"name": name} for name in labels],
    }
    payload["issue"].pop("pull_request", None)
    payload["comment"] = {
        **payload["comment"],
        "id": posted["id"],
        "body": "something private",
        "created_at": at.isoformat(),
        "user": {**payload["comment"]["user"], "login": user, "type": user_type},
    }
    payload["sender"] = {**payload["sender"], "login": user, "type": user_type}
    return payload


def test_the_score_follows_the_documented_formula():
    assert (
        health.score(open=0, critical=0, critical_stale=0, stale=0, unresponded=0, quiet=True)
        == 100
    )
    assert (
        health.score(open=4, critical=0, critical_stale=0, stale=0, unresponded=0, quiet=False)
        == 100
    )
    # one critical issue that is also critical-stale: 20; 2 of 4 unanswered: 15; 1 of 4 stale: 5
    assert (
        health.score(open=4, critical=1, critical_stale=1, stale=1, unresponded=2, quiet=False)
        == 60
    )
    # critical points stop at 40; quiet for a week: 10 more
    assert (
        health.score(open=5, critical=5, critical_stale=5, stale=5, unresponded=5, quiet=True) == 0
    )
    assert health.score(open=10, critical=5, critical_stale=0, stale=0, unresponded=0, quiet=True) == 50  # fmt: skip


async def test_health_counts_what_an_account_manager_needs(
    rt, client, github, installed, acme, deliver
):
    customer, _ = acme
    now = datetime.now(UTC)
    github.set_permission(installed[1], "bob", "write")
    github.set_permission(installed[1], "carol", "read")
    answered = await follow(
        github, installed, "p0, answered",
        labels=["customer/acme", "priority/p0"], created_at=now - timedelta(hours=10),
        updated_at=now - timedelta(hours=1),
    )  # fmt: skip
    await follow(
        github, installed, "p1, quiet for 2.5 days",
        labels=["customer/acme", "priority/p1"], created_at=now - timedelta(days=5),
        updated_at=now - timedelta(days=2, hours=12),
    )  # fmt: skip
    stale = await follow(
        github, installed, "p3, quiet for 4 days, only the customer wrote",
        labels=["customer/acme", "priority/p3"], created_at=now - timedelta(days=6),
        updated_at=now - timedelta(days=4),
    )  # fmt: skip
    closed = await follow(
        github, installed, "closed, answered in 2 hours", labels=["customer/acme"],
        state="closed", created_at=now - timedelta(days=8), closed_at=now - timedelta(days=7),
        updated_at=now - timedelta(days=7),
    )  # fmt: skip
    await follow(github, installed, "not theirs", labels=["priority/p0"])

    await deliver("issue_comment", comment_webhook(
        github, installed, answered["number"], "bob", now - timedelta(hours=4)))  # fmt: skip
    await deliver("issue_comment", comment_webhook(
        github, installed, stale["number"], "carol", now - timedelta(days=4)))  # fmt: skip
    await deliver("issue_comment", comment_webhook(
        github, installed, stale["number"], "renovate[bot]", now - timedelta(days=4),
        user_type="Bot"))  # fmt: skip
    await deliver("issue_comment", comment_webhook(
        github, installed, closed["number"], f"{github.app_slug}[bot]",
        now - timedelta(days=8) + timedelta(hours=2), user_type="Bot"))  # fmt: skip

    # A comment on an issue no customer follows costs nothing: no GitHub call, no row.
    other = await follow(github, installed, "nobody follows this", labels=[])
    before = len(github.calls)
    await deliver("issue_comment", comment_webhook(
        github, installed, other["number"], "dave", now, labels=()))  # fmt: skip
    assert [c.path for c in github.calls[before:] if "/collaborators/" in c.path] == []
    async with engine.connection() as connection:
        assert not await connection.fetchval(
            "SELECT count(*) FROM portal_issue_activity WHERE number = $1", other["number"]
        )

    stats = await health.of(customer, now)

    assert (stats.open, stats.critical, stats.critical_stale, stats.stale) == (3, 2, 1, 1)
    assert stats.unresponded == 2  # the p1 nobody answered, the p3 only the customer answered
    assert stats.median_first_response_hours == 4.0  # 6 h and 2 h
    assert abs(stats.last_activity - (now - timedelta(hours=1))) < timedelta(seconds=1)
    # critical: 10 + 20; unresponded: 30 * 2/3; stale: 20 * 1/3
    assert stats.score == round(100 - 30 - 20 - 20 / 3)

    admin = await tokens.create("ops", "admin", [])
    served = await client.get(
        "/api/customers/acme/stats", headers={"authorization": f"Bearer {admin}"}
    )
    assert served.json()["unresponded"] == 2 and served.json()["score"] == stats.score


async def test_last_activity_counts_open_issues_and_those_closed_in_the_last_30_days(
    github, installed, acme
):
    customer, _ = acme
    now = datetime.now(UTC)
    await follow(
        github, installed, "open, quiet for 10 days",
        created_at=now - timedelta(days=20), updated_at=now - timedelta(days=10),
    )  # fmt: skip
    await follow(
        github, installed, "closed 8 days ago", state="closed",
        created_at=now - timedelta(days=20), closed_at=now - timedelta(days=8),
        updated_at=now - timedelta(days=8),
    )  # fmt: skip
    await follow(
        github, installed, "closed 40 days ago, relabelled yesterday", state="closed",
        created_at=now - timedelta(days=50), closed_at=now - timedelta(days=40),
        updated_at=now - timedelta(days=1),
    )  # fmt: skip

    stats = await health.of(customer, now)

    assert abs(stats.last_activity - (now - timedelta(days=8))) < timedelta(seconds=1)
    # nothing that counts moved for a week while an issue is open: quiet (10), and stale (20)
    assert stats.score == 100 - 30 - 20 - 10


async def test_an_agent_allowed_by_the_repository_answers_for_the_team(
    rt, github, installed, acme, deliver
):
    customer, _ = acme
    installation, repository = installed
    github.add_file(repository, ".github/dispatch.yml", 'allowed_bots: ["agent-bot[bot]"]\n')
    await repo_config.refresh(rt, installation, repository["full_name"])
    now = datetime.now(UTC)
    hours_ago = {"created_at": now - timedelta(hours=3), "updated_at": now}
    by_agent = await follow(github, installed, "answered by the agent", **hours_ago)
    by_other = await follow(github, installed, "answered by some other bot", **hours_ago)

    await deliver("issue_comment", comment_webhook(
        github, installed, by_agent["number"], "agent-bot[bot]", now - timedelta(hours=1),
        user_type="Bot"))  # fmt: skip
    await deliver("issue_comment", comment_webhook(
        github, installed, by_other["number"], "other-bot[bot]", now - timedelta(hours=1),
        user_type="Bot"))  # fmt: skip

    stats = await health.of(customer, now)
    assert (stats.open, stats.unresponded) == (2, 1)  # only the other bot's issue waits
    assert stats.median_first_response_hours == 2.0  # the agent answered 2 hours in


async def test_an_issue_followed_later_reads_its_earlier_comments_once(
    rt, github, installed, acme, deliver
):
    customer, _ = acme
    installation, repository = installed
    github.set_permission(repository, "bob", "maintain")
    issue = await follow(github, installed, "Older issue", labels=["status/ready"])
    github.add_comment(repository, issue["number"], "a customer asks", user="carol")
    github.add_comment(repository, issue["number"], "we are on it", user="bob")

    github.add_label_to_issue(repository, issue["number"], "customer/acme")
    labeled = for_repo("issues/labeled", installation, repository)
    labeled["issue"] = github.issue(repository, issue["number"])
    labeled["label"] = {**labeled["label"], "name": "customer/acme"}
    await deliver("issues", labeled)
    await drain(rt)

    stats = await health.of(customer, datetime.now(UTC))
    assert (stats.open, stats.unresponded) == (1, 0)
    async with engine.connection() as connection:
        backfilled = await connection.fetchval(
            "SELECT backfilled_at IS NOT NULL FROM portal_issue_activity WHERE number = $1",
            issue["number"],
        )
    assert backfilled
    reads = len(github.calls_to("GET", rf"/issues/{issue['number']}/comments"))
    await deliver("issues", labeled)  # labelled again: nothing is read twice
    assert len(github.calls_to("GET", rf"/issues/{issue['number']}/comments")) == reads
