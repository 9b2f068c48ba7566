"""The execution summary: the mission's status comment, edited with what each item of an
approved revision became (its issue, its run and the run's state), and looked at again while
runs still wait for the spawn gates' decision.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app import jobs, queue
from app.agents import runs
from app.agents.runs import RunState
from app.github import markdown
from app.orchestrator import missions, revisions, status
from app.orchestrator.revisions import ItemOutcome
from app.runtime import Runtime

# How often the execution summary is refreshed while runs wait for the spawn gates' decision.
REPORT_EVERY = timedelta(seconds=5)
REPORT_TIMES = 24


_STATE_TEXT = {
    RunState.QUEUED: "requested; waiting for the spawn gates",
    RunState.DISPATCHED: "dispatched 🚀",
    RunState.RUNNING: "running",
    RunState.SUCCEEDED: "succeeded",
    RunState.FAILED: "failed",
    RunState.CANCELLED: "cancelled",
    RunState.TIMED_OUT: "timed out",
    RunState.BLOCKED: "blocked",
    RunState.REFUSED: "refused",
}


async def report(rt: Runtime, proposal_id: int, times: int = 0) -> None:
    """Edit the mission's status comment with what each item became; while runs still wait
    for the spawn gates, look again a little later (a job), until they are decided."""
    proposal = await revisions.proposal(proposal_id)
    if proposal is None:
        return
    mission = await missions.get(proposal.mission_id)
    if mission is None:
        return
    items: list[dict[str, Any]] = proposal.proposal["items"]
    rows = {row.position: row for row in await revisions.items(proposal.id)}
    lines = [
        f"✅ Revision `{proposal.revision}` approved by {proposal.decided_by} and carried out "
        f"({status.spend(mission)} of planning).",
        "",
        "| # | issue | run |",
        "|---|---|---|",
    ]
    undecided = False
    for position, item in enumerate(items):
        row = rows.get(position)
        issue = f"#{row.issue_number}" if row and row.issue_number else "—"
        if item["kind"] == "new_issue" and row and row.issue_number:
            issue += " (new)"
        if row is None:
            run_text = "not done yet"
            undecided = True
        elif row.run_id is not None:
            run = await runs.get(row.run_id)
            state = run.state if run else RunState.QUEUED
            run_text = f"run #{row.run_id} {item['mode']}: {_STATE_TEXT[state]}"
            if run is not None and run.state is RunState.REFUSED and run.refusal:
                run_text += f" — {markdown.table_cell(run.refusal, 200)}"
            if run is not None and run.state is RunState.FAILED and run.summary:
                run_text += f" — {markdown.inline_text(run.summary, 200)}"
            undecided = undecided or state is RunState.QUEUED
        elif row.outcome is ItemOutcome.REFUSED:
            run_text = f"{item['mode']}: refused — {markdown.table_cell(row.detail or '', 200)}"
        elif row.outcome is ItemOutcome.WAITING:
            run_text = f"{item['mode']}: {row.detail}"
        elif row.outcome is ItemOutcome.NO_RUN:
            run_text = "no run"
        else:
            run_text = "not done yet"
            undecided = True
        lines.append(f"| {position + 1} | {issue} | {run_text} |")
    await status.publish(rt, mission, "\n".join(lines))
    if undecided and times < REPORT_TIMES:
        await queue.enqueue(
            jobs.REPORT_MISSION,
            {"proposal": proposal.id, "times": times + 1},
            delay=REPORT_EVERY,
            dedupe_key=f"mission-report:{proposal.id}:{times + 1}",
        )
