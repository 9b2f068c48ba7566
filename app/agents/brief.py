"""The brief: everything an agent needs to do one run, as JSON, with the ready prompt. Dispatch's
own instructions are trusted; the issue's text, the requester's notes and review feedback are data
to work on, fenced as such in the prompt (`app/agents/prompt.py`)."""

from __future__ import annotations

import re
from typing import Any

from app import jobs, queue
from app.agents import plans, prompt, runs
from app.agents.runs import Run
from app.github import rest
from app.runtime import Runtime


def branch_for(run: Run, title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-")
    return f"dispatch/run-{run.id}" + (f"-{slug}" if slug else "")


async def build(rt: Runtime, run: Run) -> dict[str, Any]:
    client = rt.github.installation(run.installation_id)
    issue = await rest.get_issue(client, run.repository, run.issue_number)
    repository = await rest.get_repository(client, run.repository)
    plan = await plans.get(run.plan_id) if run.plan_id else None
    run, title, body = await _issue_text(run, issue, plan)
    branch = branch_for(run, title)
    feedback = None
    if run.mode.spec.ends_in_plan:
        feedback = await plans.latest_feedback(run.repository_id, run.issue_number)
    data: dict[str, Any] = {
        "run_id": run.id,
        "mode": run.mode.value,
        "repository": run.repository,
        "issue": {
            "number": run.issue_number,
            "title": title,
            "body": body,
            "edited_since_plan": run.issue_edited,
            "labels": [label["name"] for label in issue.get("labels") or []],
            "url": issue.get("html_url"),
        },
        "plan": {"revision": plan.revision, "body": plan.body} if plan else None,
        "feedback": feedback,
        "notes": run.notes,
        "error_context": run.error_context,
        "cost_cap_usd": run.cost_cap_usd or rt.settings.max_agent_cost_per_run,
        "max_turns": run.mode.spec.max_turns,
        "instructions": prompt.instructions(
            run.mode,
            number=run.issue_number,
            repository=run.repository,
            branch=branch,
            pull=run.target_pull,
        ),
        "base_branch": run.ref or repository.get("default_branch") or "main",
        "branch": branch,
        "allowed_tools": list(run.mode.spec.tools),
        # QA: the pull request to check; the workflow checks out `head_sha` for the agent.
        "pull_request": run.target_pull,
    }
    data["prompt"] = prompt.render(run.mode, data)
    return data


async def _issue_text(
    run: Run, issue: dict[str, Any], plan: plans.Plan | None
) -> tuple[Run, str, str]:
    """The issue text this run works from, fixed at its first brief. An implementation works
    from the text its plan was made from (what the approval approved): an edit of the issue
    after approval cannot change what gets built; the run notes that it happened."""
    if run.issue_title is not None:
        return run, run.issue_title, run.issue_body or ""
    live_title, live_body = issue.get("title") or "", issue.get("body") or ""
    title, body, edited = live_title, live_body, False
    if plan is not None and plan.issue_title is not None:
        title, body = plan.issue_title, plan.issue_body or ""
        edited = (title, body) != (live_title, live_body)
    run = await runs.update(run.id, issue_title=title, issue_body=body, issue_edited=edited)
    if edited:  # the status comment says so
        await queue.enqueue(jobs.RUN_EFFECTS, {"run": run.id, "event": "issue_edited"})
    return run, title, body
