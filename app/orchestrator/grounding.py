"""A proposal checked against the repository before anyone sees it: every issue it names exists
(and, to be worked on, is open), the titles shown are GitHub's, and each new issue comes with the
open issues it likely duplicates."""

from __future__ import annotations

from typing import Any

from githubkit.exception import RequestFailed

from app.github import rest
from app.issues import cache
from app.orchestrator import proposal as proposals
from app.orchestrator import tool_calls
from app.orchestrator.missions import Mission
from app.orchestrator.proposal import InvalidProposal
from app.runtime import Runtime
from app.search import duplicates


async def _issue_facts(scope: tool_calls.Scope, number: int) -> dict[str, Any] | None:
    """Title and state of an issue of the mission's repository; None if there is none."""
    cached = await cache.get(scope.repository, number)
    if cached is not None:
        return {"title": cached.title, "state": cached.state}
    try:
        live = await rest.get_issue(scope.client, scope.repository, number)
    except RequestFailed as exc:
        if rest.status_of(exc) in (404, 410):
            return None
        raise
    return {"title": live.get("title") or "", "state": live.get("state") or "open"}


async def check(
    rt: Runtime, scope: tool_calls.Scope, mission: Mission, parsed: proposals.ProposeInput
) -> dict[str, Any]:
    """The proposal as it is stored and shown: references checked against the repository,
    titles of the issues it names, and the likely duplicates of every new issue."""
    problems: list[str] = []
    existing: list[dict[str, Any]] = []
    for covered in parsed.existing:
        facts = await _issue_facts(scope, covered.number)
        if facts is None:
            problems.append(f"existing: #{covered.number} does not exist in {mission.repository}")
            continue
        existing.append({"number": covered.number, "why": covered.why, **facts})
    items: list[dict[str, Any]] = []
    for item in parsed.items:
        data = item.model_dump()
        if isinstance(item, proposals.ExistingIssue):
            if item.number == mission.issue_number:
                problems.append(f"items.{item.key}: #{item.number} is the mission issue itself")
                continue
            facts = await _issue_facts(scope, item.number)
            if facts is None:
                problems.append(
                    f"items.{item.key}: #{item.number} does not exist in {mission.repository}"
                )
                continue
            if facts["state"] != "open":
                problems.append(f"items.{item.key}: #{item.number} is closed")
                continue
            data["title"] = facts["title"]
        else:
            data["title"] = proposals.title_text(item.title)
            data["duplicates"] = await _likely_duplicates(rt, scope, data["title"], item.body)
        items.append(data)
    if problems:
        raise InvalidProposal(problems)
    return {"summary": parsed.summary.strip(), "existing": existing, "items": items}


async def _likely_duplicates(
    rt: Runtime, scope: tool_calls.Scope, title: str, body: str
) -> list[dict[str, Any]]:
    """Open issues a proposed new issue likely duplicates: by meaning when embeddings are on,
    else by an equal title."""
    if rt.embeddings is not None:
        found = await duplicates.likely_duplicates_of_text(
            rt,
            scope.installation_id,
            scope.repository,
            scope.repository_id,
            f"{title}\n\n{body}",
            excluding=scope.mission_issue,
        )
        return [{"number": n.number, "title": n.title, "score": round(n.score, 3)} for n in found]
    wanted = " ".join(title.lower().split())
    same = await cache.issues_with_words(scope.repository_id, title.split(), state="open", limit=20)
    return [
        {"number": issue.number, "title": issue.title, "score": 1.0}
        for issue in same
        if " ".join(issue.title.lower().split()) == wanted and issue.number != scope.mission_issue
    ][:3]
