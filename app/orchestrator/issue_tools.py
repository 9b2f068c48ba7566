"""The planning tools that read issues: search by meaning (or by words), list by labels, and
read one with its runs and plan. Every answer fences what people wrote (`tool_calls.untrusted`).
"""

from __future__ import annotations

import json

from githubkit.exception import RequestFailed

from app.agents import plans, runs
from app.github import rest
from app.issues import cache
from app.issues.cache import IssueFilter
from app.orchestrator.tool_calls import (
    ListIssues,
    ReadIssue,
    Result,
    Scope,
    SearchIssues,
    untrusted,
)
from app.search import duplicates

MAX_ISSUE_BODY_CHARS = 8_000


async def search_issues(scope: Scope, args: SearchIssues) -> Result:
    rt = scope.rt
    state = None if args.state == "all" else args.state
    if rt.embeddings is not None:
        found = await duplicates.similar_to_text(
            rt, scope.repository_id, args.query, limit=args.limit * 2, open_only=state == "open"
        )
        hits = [
            {
                "number": n.number,
                "state": n.state,
                "similarity": round(n.score, 3),
                "title": n.title,
            }
            for n in found
            if (state is None or n.state == state) and n.number != scope.mission_issue
        ][: args.limit]
        how = "by meaning"
    else:
        words = await cache.issues_with_words(
            scope.repository_id, args.query.split(), state=state, limit=args.limit + 1
        )
        hits = [
            {"number": i.number, "state": i.state, "title": i.title}
            for i in words
            if i.number != scope.mission_issue
        ][: args.limit]
        how = "by words (semantic search is off)"
    if not hits:
        return Result(f"No issue matches {json.dumps(args.query)} ({how}).")
    return Result(
        f"{len(hits)} issue(s) match {json.dumps(args.query)} ({how}), best first:\n"
        + untrusted(scope, "SEARCH RESULTS", hits)
    )


async def list_issues(scope: Scope, args: ListIssues) -> Result:
    total, page = await cache.search(
        IssueFilter(
            repositories=[scope.repository],
            state=None if args.state == "all" else args.state,
            status=args.status,
            priority=args.priority,
            type=args.type,
            excluding=scope.mission_issue,
        ),
        limit=args.limit,
        offset=args.offset,
    )
    listed = [
        {
            "number": issue.number,
            "state": issue.state,
            "status": issue.status,
            "priority": issue.priority,
            "labels": issue.labels,
            "title": issue.title,
        }
        for issue in page
    ]
    head = f"{total} issue(s) match; showing {len(listed)} from {args.offset}."
    return Result(head + ("\n" + untrusted(scope, "ISSUES", listed) if listed else ""))


async def read_issue(scope: Scope, args: ReadIssue) -> Result:
    issue = await cache.get(scope.repository, args.number)
    if issue is not None:
        title, body, state, labels = issue.title, issue.body, issue.state, issue.labels
        is_pull = False
    else:
        try:
            live = await rest.get_issue(scope.client, scope.repository, args.number)
        except RequestFailed as exc:
            if rest.status_of(exc) in (404, 410):
                return Result(f"There is no issue #{args.number} in {scope.repository}.", True)
            raise
        title, body = live.get("title") or "", live.get("body") or ""
        state = live.get("state") or "open"
        labels = sorted(label["name"] for label in live.get("labels") or [])
        is_pull = "pull_request" in live
    cut = ""
    if len(body) > MAX_ISSUE_BODY_CHARS:
        cut = f"\n(the body is {len(body)} characters; the first {MAX_ISSUE_BODY_CHARS} shown)"
        body = body[:MAX_ISSUE_BODY_CHARS]
    recent = await runs.for_issue(scope.repository, args.number, limit=5)
    plan = await plans.latest(scope.repository_id, args.number)
    lines = [
        f"{'Pull request' if is_pull else 'Issue'} #{args.number} in {scope.repository}: {state}",
        f"labels: {', '.join(labels) or 'none'}",
        "runs: "
        + (
            "; ".join(f"#{r.id} {r.mode.value} {r.state.value}" for r in recent)
            if recent
            else "none"
        ),
        f"plan: {plan.state.value} (revision {plan.revision})" if plan else "plan: none",
        untrusted(scope, f"ISSUE {args.number} TITLE", title),
        untrusted(scope, f"ISSUE {args.number} BODY", body or "(empty)") + cut,
    ]
    return Result("\n".join(lines))
