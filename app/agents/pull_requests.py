"""Which issues a pull request fixes: closing keywords in its body, and the issue of the run
whose branch it comes from.

A pull request's text is anyone's to write. Closing keywords count only from a branch of the
repository itself or from an author with write permission (a fork's "fixes #1 … fixes #90" moves
nothing), at most `MAX_FIXED_ISSUES` of them; a run's branch counts only in the run's own
repository, for a pull request opened in that repository.
"""

from __future__ import annotations

import re
from typing import Any

from app.agents import runs
from app.events import Event
from app.github.permissions import Permission
from app.runtime import Runtime

_FIXES = re.compile(r"\b(?:fix(?:e[sd])?|close[sd]?|resolve[sd]?)\s*:?\s+#(\d+)\b", re.IGNORECASE)
_RUN_BRANCH = re.compile(r"^dispatch/run-(\d+)(?:-|$)")
MAX_FIXED_ISSUES = 10


def closes(body: str | None) -> set[int]:
    """The issue numbers a pull request's text closes with a keyword (`Fixes #12`), at most
    `MAX_FIXED_ISSUES` of them. Whether they count is for the caller to decide."""
    numbers: set[int] = set()
    for found in _FIXES.findall(body or ""):
        if len(numbers) >= MAX_FIXED_ISSUES:
            break
        numbers.add(int(found))
    return numbers


def run_branch_prefix(run_id: int) -> str:
    return f"dispatch/run-{run_id}"


def is_run_branch(run: runs.Run, head: dict[str, Any]) -> bool:
    """Whether a pull request's head is `run`'s own branch in `run`'s repository. Whether the pull
    request is opened in that repository too is `is_runs_pull`'s question."""
    match = _RUN_BRANCH.match(str(head.get("ref") or ""))
    head_repo = head.get("repo") or {}
    return (
        match is not None
        and int(match.group(1)) == run.id
        and head_repo.get("id") == run.repository_id
    )


def is_runs_pull(run: runs.Run, pull: dict[str, Any], repository_id: int | None) -> bool:
    """Whether pull request `pull`, opened in repository `repository_id`, is `run`'s: from the
    run's own branch and opened in the run's repository. Another repository of the same network
    can open a pull request from that branch too; it claims neither the run nor its issue."""
    return repository_id == run.repository_id and is_run_branch(run, pull.get("head") or {})


async def fixed_issues(event: Event, rt: Runtime) -> tuple[set[int], runs.Run | None]:
    """Issues a PR fixes, and the run whose branch it comes from (if any)."""
    pull_request = event.payload["pull_request"]
    head = pull_request.get("head") or {}
    repository_id = (event.payload.get("repository") or {}).get("id")
    numbers: set[int] = set()
    if await _trusted(event, rt, head, repository_id):
        numbers |= closes(pull_request.get("body"))
    run = None
    if (match := _RUN_BRANCH.match(str(head.get("ref") or ""))) is not None:
        candidate = await runs.get(int(match.group(1)))
        if candidate is not None and is_runs_pull(candidate, pull_request, repository_id):
            run = candidate
            numbers.add(run.issue_number)
    return numbers - {pull_request["number"]}, run


async def _trusted(
    event: Event, rt: Runtime, head: dict[str, Any], repository_id: int | None
) -> bool:
    if (head.get("repo") or {}).get("id") == repository_id:
        return True  # only people with write permission can push a branch here
    author = (event.payload["pull_request"].get("user") or {}).get("login")
    if not author or event.installation_id is None:
        return False
    client = rt.github.installation(event.installation_id)
    return await rt.permissions.level(client, event.repository or "", author) >= Permission.WRITE
