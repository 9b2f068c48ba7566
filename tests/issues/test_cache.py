"""The issue cache matches GitHub: after webhooks, after a backfill, after a reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.issues import backfill, cache, onboarding, reconcile
from tests.webhooks import for_repo


def issue_event(github, repo, issue, action):
    installation, repository = repo
    payload = for_repo("issues/opened", installation, repository, action=action)
    payload["issue"] = {**payload["issue"], **github.issue(repository, issue["number"])}
    return payload


async def test_webhooks_keep_the_cache_current(github, repo, deliver):
    issue = github.add_issue(repo[1], "Crash on save", "Steps…", labels=["type/bug", "priority/p1"])

    await deliver("issues", issue_event(github, repo, issue, "opened"))
    cached = await cache.get("octo-org/widgets", issue["number"])
    assert (cached.title, cached.priority, cached.status) == ("Crash on save", "priority/p1", None)

    github.update_issue(repo[1], issue["number"], title="Crash on save (Safari)")
    await deliver("issues", issue_event(github, repo, issue, "edited"))
    assert (await cache.get("octo-org/widgets", issue["number"])).title == "Crash on save (Safari)"


async def test_an_older_event_never_overwrites_a_newer_copy(github, repo, deliver):
    issue = github.add_issue(repo[1], "new title")
    fresh = issue_event(github, repo, issue, "edited")
    stale = issue_event(github, repo, issue, "edited")
    stale["issue"]["title"] = "old title"
    stale["issue"]["updated_at"] = "2020-01-01T00:00:00Z"

    await deliver("issues", fresh)
    await deliver("issues", stale)

    assert (await cache.get("octo-org/widgets", issue["number"])).title == "new title"


async def test_backfill_of_a_thousand_issues_caches_every_one(rt, github, repo):
    installation, repository = repo
    now = datetime.now(UTC)
    for i in range(1000):
        github.add_issue(repository, f"issue {i}", labels=["status/ready"] if i % 2 else [])
    github.add_issue(
        repository, "closed last week", state="closed", closed_at=now - timedelta(days=7)
    )
    github.add_issue(
        repository, "closed long ago", state="closed", closed_at=now - timedelta(days=90)
    )
    github.add_issue(repository, "a pull request", is_pull=True)

    steps: list[backfill.Progress] = []

    count = await onboarding.onboard(rt, installation, "octo-org/widgets", steps.append)

    assert count == 1001
    # Told after every page: listed of expected (GitHub counts the pull request), cached so far.
    opened = [(s.listed, s.expected, s.cached) for s in steps if s.phase == "open"]
    assert opened[0] == (100, 1001, 100) and opened[-1] == (1001, 1001, 1000)
    assert len(opened) == 11
    assert steps[-1].done and steps[-1].cached == 1001
    total, _ = await cache.search(cache.IssueFilter(state=None), limit=1)
    assert total == 1001
    ready, _ = await cache.search(cache.IssueFilter(status="ready"), limit=1)
    assert ready == 500
    assert len(github.calls_to("GET", r"/issues$")) >= 11  # paged, 100 at a time


async def test_the_install_backfill_logs_its_progress(rt, github, repo, caplog):
    installation, repository = repo
    for i in range(3):
        github.add_issue(repository, f"issue {i}")

    with caplog.at_level("INFO", logger="app.issues.onboarding"):
        await onboarding.onboard(rt, installation, "octo-org/widgets")  # as the job runs it

    [done] = [r for r in caplog.records if r.getMessage() == "backfill progress"]
    assert (done.repository, done.cached) == ("octo-org/widgets", 3)


async def test_reconcile_repairs_labels_changed_while_dispatch_was_down(rt, github, repo, clock):
    installation, repository = repo
    issue = github.add_issue(repository, "t", labels=["status/ready", "type/bug"])
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    from app.installations import service as installations

    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])

    # While Dispatch is down: a label is removed, the issue is closed, nobody tells us.
    github.remove_label_from_issue(repository, issue["number"], "type/bug")
    github.update_issue(repository, issue["number"], state="closed")

    result = await reconcile.run(rt)

    cached = await cache.get("octo-org/widgets", issue["number"])
    assert "type/bug" not in cached.labels
    assert cached.state == "closed"
    assert github.label_names(repository, issue["number"]) == ["status/done"]
    assert result["repaired"] >= 1
