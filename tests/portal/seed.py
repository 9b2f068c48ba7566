"""Issues on the fake GitHub, put into the cache as their webhooks would put them."""

from __future__ import annotations

from app.issues import cache


def issue_on(github, repo, title, *, labels=(), body="", **kwargs):
    """An issue on the fake GitHub, cached as its `issues.opened` webhook would cache it."""
    installation, repository = repo
    return github.add_issue(repository, title, body, labels=labels, **kwargs)


async def cached(github, repo, issue):
    installation, repository = repo
    await cache.store(installation, repository, github.issue(repository, issue["number"]))


async def follow(github, repo, title, *, labels=("customer/acme",), body="", **kwargs):
    issue = issue_on(github, repo, title, labels=labels, body=body, **kwargs)
    await cached(github, repo, issue)
    return issue
