"""The one way to start a run. Commands, auto-dispatch rules, alerts (and harnesses, missions
and MCP clients) all call `request_run`: it creates the run (`queued`) and queues its dispatch in
one transaction, so a run never exists without the job that dispatches it — a worker that dies
right after leaves the job to another worker, never a run stuck in `queued`.

The dispatch job then applies the spawn gates (`gates.decide`) and answers on the issue: 🚀 and
the run's status comment, or 😕 and the gate's reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import jobs, queue
from app.agents import runs
from app.agents.runs import NewRun, Run
from app.db import engine


@dataclass(frozen=True)
class Refusal:
    """The run was not created; `reason` says why (for a reply or an API error)."""

    reason: str
    active: Run | None = None


async def request_run(new: NewRun) -> Run | Refusal:
    """Create the run and queue its dispatch together. A refusal when the issue already has an
    active run (one active run per issue, or per pull request, across every replica), or when a
    run that works on a pull request (qa, revise) names none (`app/agents/qa.py` and
    `app/agents/revise_targets.py` find it)."""
    if new.mode.spec.on_pull and not new.target_pull:
        if new.mode.spec.checks_pull:
            return Refusal(
                f"a {new.mode.value} run checks a pull request, and none was given: comment on "
                f"the PR, or open one that says Fixes #{new.issue_number}."
            )
        return Refusal(
            f"a {new.mode.value} run works on a pull request, and none was given: comment on "
            "the PR."
        )
    try:
        async with engine.transaction():
            run = await runs.create(new)
            await queue.enqueue(jobs.DISPATCH_RUN, {"run": run.id}, dedupe_key=f"dispatch:{run.id}")
    except runs.ActiveRunExists as exc:
        return Refusal(
            f"run #{exc.run.id} ({exc.run.mode.value}) is already {exc.run.state.value} on "
            "this issue; `/dispatch cancel` stops it.",
            active=exc.run,
        )
    return run
