"""Which pull request a `revise` run works on: an open one from one of the repository's own
branches — one a Dispatch run opened, or any with `follow_ups: {any_pr: true}` — never a fork's
(its commits could not be pushed there) nor the default branch; with the issue it fixes and that
issue's approved plan (`target_for`), or why a run may not revise it (`revisable`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub

from app.agents import plans, pull_requests, qa, runs, spawn
from app.agents.plans import PlanState
from app.agents.runs import Run
from app.github import markdown, rest
from app.issues.repo_config import RepoConfig
from app.modes import Mode

_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
ANY_PR_HINT = (
    "A maintainer can allow revising any pull request of this repository's own branches with "
    "`follow_ups: {any_pr: true}` in `.github/dispatch.yml`."
)


@dataclass(frozen=True)
class Target:
    """An open pull request a revise run may work on, and what it fixes."""

    pull: dict[str, Any]
    origin_issue: int | None
    plan_id: int | None


def _origin_run_id(head: dict[str, Any]) -> int | None:
    match = re.match(r"^dispatch/run-(\d+)(?:-|$)", str(head.get("ref") or ""))
    return int(match.group(1)) if match else None


async def opened_by(pull: dict[str, Any]) -> Run | None:
    """The Dispatch run whose branch the pull request comes from (in the run's repository, and
    opened there)."""
    run_id = _origin_run_id(pull.get("head") or {})
    if run_id is None:
        return None
    run = await runs.get(run_id)
    base = ((pull.get("base") or {}).get("repo") or {}).get("id")
    return run if run is not None and pull_requests.is_runs_pull(run, pull, base) else None


def revisable(
    pull: dict[str, Any], repository_id: int, *, opened_by_dispatch: bool, any_pr: bool
) -> dict[str, Any] | spawn.Refusal:
    """The pull request as a revise target (`qa.describe`), or why a run may not revise it."""
    number = pull["number"]
    if pull.get("merged") or pull.get("merged_at"):
        return spawn.Refusal(
            f"pull request #{number} is already merged: there is nothing left to revise. Open an "
            "issue for further changes."
        )
    if pull.get("state") != "open":
        return spawn.Refusal(f"pull request #{number} is closed: reopen it to have it revised.")
    head = pull.get("head") or {}
    head_repo = head.get("repo")
    if not head_repo:
        return spawn.Refusal(f"the branch of pull request #{number} is gone.")
    if head_repo.get("id") != repository_id:
        fork = markdown.code_span(str(head_repo.get("full_name") or "a fork"))
        return spawn.Refusal(
            f"pull request #{number} comes from the fork {fork}: Dispatch pushes an agent's "
            "commits only to this repository's own branches."
        )
    default_branch = ((pull.get("base") or {}).get("repo") or {}).get("default_branch")
    if head.get("ref") and head.get("ref") == default_branch:
        branch = markdown.code_span(str(default_branch))
        return spawn.Refusal(
            f"pull request #{number} comes from the default branch {branch}: Dispatch never "
            "pushes to it."
        )
    if not opened_by_dispatch and not any_pr:
        return spawn.Refusal(
            f"pull request #{number} was not opened by a Dispatch run. {ANY_PR_HINT}"
        )
    target = qa.describe(pull)
    if not _SHA.match(target["head_sha"]):
        return spawn.Refusal(f"GitHub gave no head commit for pull request #{number}.")
    return target


async def _not_a_pull(repository: str, number: int) -> spawn.Refusal:
    """What to do when `/dispatch revise` is asked on an issue."""
    opened = next(
        (
            run
            for run in await runs.for_issue(repository, number)
            if run.mode is Mode.IMPLEMENT and run.pr_number
        ),
        None,
    )
    if opened is not None:
        return spawn.Refusal(
            f"`/dispatch revise` works on a pull request, not an issue: comment it on pull "
            f"request #{opened.pr_number}, which this issue's implementation opened, or request "
            "changes in a review there."
        )
    return spawn.Refusal(
        "`/dispatch revise` works on a pull request, not an issue: comment it on the pull "
        "request to revise. To start from this issue, `/dispatch implement` opens one from its "
        "approved plan."
    )


async def target_for(
    client: GitHub,
    *,
    repository: str,
    repository_id: int,
    number: int,
    is_pull: bool,
    config: RepoConfig,
) -> Target | spawn.Refusal:
    """The pull request a revise run on `number` works on, with the issue it fixes and that
    issue's approved plan; or why there is none."""
    if not is_pull:
        return await _not_a_pull(repository, number)
    pull = await rest.get_pull(client, repository, number)
    if pull is None:
        return spawn.Refusal(f"pull request #{number} was not found in {repository}.")
    origin = await opened_by(pull)
    described = revisable(
        pull,
        repository_id,
        opened_by_dispatch=origin is not None,
        any_pr=config.follow_ups.any_pr,
    )
    if isinstance(described, spawn.Refusal):
        return described
    if origin is not None:
        origin_issue: int | None = origin.issue_number
        plan_id = origin.plan_id
    else:
        # Its own branch (forks are refused above): only writers push here, so its text counts.
        closed = sorted(pull_requests.closes(pull.get("body")) - {number})
        origin_issue = closed[0] if closed else None
        plan_id = None
    if plan_id is None and origin_issue is not None:
        approved = await plans.latest(
            repository_id, origin_issue, states=(PlanState.APPROVED.value,)
        )
        plan_id = approved.id if approved is not None else None
    return Target(pull=described, origin_issue=origin_issue, plan_id=plan_id)
