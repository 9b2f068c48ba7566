"""The pull requests whose change requests no run has taken up, for the claim queue (`pending`,
and `SOURCE` that serves its `pr_follow_up` items): a change request on the current head, by a
writer, and no active run or claim on the pull request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from githubkit import GitHub

from app.agents import pull_requests, runs, spawn
from app.agents.review_feedback import feedback, login, standing_change_requests
from app.agents.revise_targets import opened_by, revisable
from app.claims import records as claims
from app.claims.follow_ups import PullFollowUp
from app.github import rest
from app.github.permissions import Permission
from app.issues import repo_config
from app.issues.repo_config import RepoConfig
from app.runtime import Runtime


async def pending(
    rt: Runtime, installation_id: int, repositories: Iterable[str]
) -> list[PullFollowUp]:
    """Pull requests of `repositories` (one installation) whose change requests wait: an open
    pull request a run may revise (`revisable`), a change request standing on its current head
    by someone with write permission, and no active run or claim on it. Oldest request first.

    A claim queue lists these as `pr_follow_up` items; it asks GitHub (a few calls per open
    Dispatch pull request), so call it when listing work, not per heartbeat."""
    client = rt.github.installation(installation_id)
    found: list[PullFollowUp] = []
    for repository in repositories:
        loaded = await repo_config.load(rt, installation_id, repository)
        for pull in await rest.open_pulls(client, repository):
            item = await _pending_pull(rt, client, installation_id, repository, pull, loaded.config)
            if item is not None:
                found.append(item)
    found.sort(key=lambda item: (item.requested_at or "", item.repository, item.pull_number))
    return found


async def _pending_pull(
    rt: Runtime,
    client: GitHub,
    installation_id: int,
    repository: str,
    pull: dict[str, Any],
    config: RepoConfig,
) -> PullFollowUp | None:
    base_repo = (pull.get("base") or {}).get("repo") or {}
    repository_id = int(base_repo.get("id") or 0)
    origin = await opened_by(pull)
    target = revisable(
        pull, repository_id, opened_by_dispatch=origin is not None, any_pr=config.follow_ups.any_pr
    )
    if isinstance(target, spawn.Refusal):
        return None
    if await runs.active_for_issue(repository_id, target["number"]) is not None:
        return None
    if await claims.active_on(repository_id, target["number"]) is not None:
        return None  # a harness holds it
    reviews = await rest.pull_reviews(client, repository, target["number"])
    waiting = []
    for review in standing_change_requests(reviews):
        # A change request of an older head was answered by a push since: it waits for its
        # reviewer now, not for an agent.
        if review.get("commit_id") != target["head_sha"]:
            continue
        level = await rt.permissions.level(client, repository, login(review))
        if level >= Permission.WRITE:
            waiting.append(review)
    if not waiting:
        return None
    origin_issue = origin.issue_number if origin is not None else None
    if origin_issue is None:
        closed = sorted(pull_requests.closes(pull.get("body")) - {target["number"]})
        origin_issue = closed[0] if closed else None
    return PullFollowUp(
        installation_id=installation_id,
        repository=repository,
        repository_id=repository_id,
        pull_number=target["number"],
        title=str(pull.get("title") or ""),
        url=target["url"],
        head_ref=target["head_ref"],
        head_sha=target["head_sha"],
        base_ref=target["base_ref"],
        origin_issue=origin_issue,
        reviewers=sorted({login(review) for review in waiting}),
        review_ids=[int(review["id"]) for review in waiting],
        requested_at=min((str(r.get("submitted_at") or "") for r in waiting), default=None),
    )


class _Source:
    """The claim queue's view of follow-ups (`app.claims.follow_ups.FollowUpSource`)."""

    async def pending(
        self, rt: Runtime, installation_id: int, repositories: list[str]
    ) -> list[PullFollowUp]:
        return await pending(rt, installation_id, repositories)

    async def feedback(self, rt: Runtime, item: PullFollowUp) -> dict[str, Any]:
        client = rt.github.installation(item.installation_id)
        pull = {"number": item.pull_number, "head_sha": item.head_sha}
        return await feedback(rt, client, item.repository, pull)


SOURCE = _Source()
