"""The brief: everything an agent needs to do one run, as JSON, with the ready prompt. Dispatch's
own instructions are trusted; the issue's text, the requester's notes and review feedback are data
to work on, fenced as such in the prompt (`app/agents/prompt.py`)."""

from __future__ import annotations

import re
from typing import Any

from app.agents import plans, prompt
from app.agents.runs import Run
from app.github import rest
from app.remediation import context
from app.runtime import Runtime


def branch_for(run: Run, title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-")
    return f"dispatch/run-{run.id}" + (f"-{slug}" if slug else "")


async def build(rt: Runtime, run: Run) -> dict[str, Any]:
    client = rt.github.installation(run.installation_id)
    issue = await rest.get_issue(client, run.repository, run.issue_number)
    repository = await rest.get_repository(client, run.repository)
    branch = branch_for(run, issue.get("title") or "")
    plan = await plans.get(run.plan_id) if run.plan_id else None
    feedback = None
    if run.mode.spec.ends_in_plan:
        feedback = await plans.latest_feedback(run.repository_id, run.issue_number)
    data: dict[str, Any] = {
        "run_id": run.id,
        "mode": run.mode.value,
        "repository": run.repository,
        "issue": {
            "number": run.issue_number,
            "title": issue.get("title") or "",
            "body": issue.get("body") or "",
            "labels": [label["name"] for label in issue.get("labels") or []],
            "url": issue.get("html_url"),
        },
        "plan": {"revision": plan.revision, "body": plan.body} if plan else None,
        "feedback": feedback,
        "notes": run.notes,
        "error_context": await _error_context(run),
        "cost_cap_usd": run.cost_cap_usd or rt.settings.max_agent_cost_per_run,
        "max_turns": run.mode.spec.max_turns,
        "instructions": prompt.instructions(
            run.mode, number=run.issue_number, repository=run.repository, branch=branch
        ),
        "base_branch": run.ref or repository.get("default_branch") or "main",
        "branch": branch,
        "allowed_tools": list(run.mode.spec.tools),
    }
    data["prompt"] = prompt.render(run.mode, data)
    return data


async def _error_context(run: Run) -> dict[str, Any] | None:
    if run.fingerprint is None:
        return None
    return await context.error_context(run.fingerprint)
