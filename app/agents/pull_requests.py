"""Which issues a pull request fixes: closing keywords in its body, and the issue of the run
whose branch it comes from."""

from __future__ import annotations

import re

from app.agents import runs
from app.events import Event
from app.github.repo import Repo

_FIXES = re.compile(r"\b(?:fix(?:e[sd])?|close[sd]?|resolve[sd]?)\s*:?\s+#(\d+)\b", re.IGNORECASE)
_RUN_BRANCH = re.compile(r"^dispatch/run-(\d+)(?:-|$)")


async def fixed_issues(event: Event) -> tuple[set[int], runs.Run | None]:
    """Issues a PR fixes: closing keywords in its body, and the issue of the run whose branch it
    comes from (that run is returned too)."""
    pull_request = event.payload["pull_request"]
    numbers = {int(n) for n in _FIXES.findall(pull_request.get("body") or "")}
    run = None
    branch = (pull_request.get("head") or {}).get("ref") or ""
    if (match := _RUN_BRANCH.match(branch)) is not None:
        candidate = await runs.get(int(match.group(1)))
        if candidate is not None and Repo.parse(candidate.repository) == event.repo:
            run = candidate
            numbers.add(run.issue_number)
    return numbers - {pull_request["number"]}, run
