"""Review and execution: what `/dispatch approve` and `/dispatch reject` do on a mission issue,
and what an approved revision does.

Approval binds one revision: the one on the table when the approval was sent, planned from the
mission issue's text as it still is (an edit of the issue, or a newer proposal, makes an older
revision unapprovable). Executing it is a job that does exactly what the revision lists, and is
idempotent: each item has a row, claimed before its issue is created, so a retried job (or a
retried approval) never creates an issue twice — a claim left by a job that died after GitHub
created the issue is settled by finding the issue by its marker. Every run goes through the one
run-starting service (`spawn.request_run`): the spawn gates and budgets apply to each, a refusal
is reported for its item, and the other items go ahead. An item whose dependencies are still
open waits; it is requested when the last of them closes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from githubkit import GitHub
from githubkit.exception import RequestFailed

from app import jobs, queue
from app.agents import runs, spawn
from app.agents.runs import NewRun, RunState, Trigger
from app.audit import log as audit
from app.db import engine
from app.github import markdown, rest
from app.issues.labels import Signal, Status
from app.modes import Mode
from app.orchestrator import planning, status, store
from app.orchestrator import proposal as proposals
from app.orchestrator.store import ItemOutcome, Mission, MissionState, Proposal, ProposalState
from app.runtime import Runtime

log = logging.getLogger(__name__)

# How often the execution summary is refreshed while runs wait for the spawn gates' decision.
REPORT_EVERY = timedelta(seconds=5)
REPORT_TIMES = 24


@dataclass(frozen=True)
class Answer:
    """What the verb replies: `ok=False` is a refusal (😕 and the reason)."""

    ok: bool
    reply: str


async def for_issue(repository_id: int, issue_number: int) -> Mission | None:
    """The issue's latest mission: an issue with one is a mission issue, where `approve` and
    `reject` review the mission's proposal rather than an agent's plan."""
    return await store.latest_for_issue(repository_id, issue_number)


# --- approve


async def approve(
    rt: Runtime,
    mission: Mission,
    *,
    by: str,
    revision: str | None,
    sent_at: datetime | None,
    allow_self_approval: bool,
) -> Answer:
    current = await store.latest_proposal(mission.id)
    if mission.state in (MissionState.PLANNING, MissionState.WAITING):
        if revision and current is not None and revision == current.revision:
            return Answer(
                False,
                f"revision `{revision}` no longer applies: Claude is planning this mission "
                "again. Approve the new proposal once it is posted.",
            )
        return Answer(
            False, "Claude is still planning this mission; approve its proposal once it is posted."
        )
    if current is None:
        why = f" ({mission.error})" if mission.error else ""
        return Answer(
            False,
            f"mission #{mission.id} has no proposal to approve: it {mission.state.value}{why}.",
        )
    if revision and revision != current.revision:
        older = await store.proposal_by_revision(mission.id, revision)
        if older is None:
            return Answer(
                False,
                f"mission #{mission.id} has no revision {markdown.code_span(revision[:40])}; the "
                f"current proposal is revision `{current.revision}`.",
            )
        return Answer(
            False,
            f"revision `{revision}` is stale: the current proposal is revision "
            f"`{current.revision}`. Read it, then `/dispatch approve {current.revision}`.",
        )
    if current.state is ProposalState.APPROVED:
        # A retried approval: resume (or confirm) the execution; items are never done twice.
        await _enqueue_execution(current)
        return Answer(
            True,
            f"Revision `{current.revision}` was already approved by {current.decided_by}; "
            "nothing is created or dispatched twice.",
        )
    if current.state is not ProposalState.PROPOSED:
        return Answer(
            False,
            f"revision `{current.revision}` was {current.state.value}; there is no proposal "
            "waiting for review.",
        )
    requester = mission.requested_by
    if not allow_self_approval and requester and requester.lower() == by.lower():
        return Answer(
            False,
            "you asked for this mission, so someone else approves it (or set "
            "`plans.allow_self_approval: true` in `.github/dispatch.yml`).",
        )
    if sent_at is not None and sent_at < current.created_at:
        return Answer(
            False,
            f"your approval was sent before revision `{current.revision}` was proposed. Read "
            f"it, then `/dispatch approve {current.revision}`.",
        )
    client = rt.github.installation(mission.installation_id)
    issue = await rest.get_issue(client, mission.repository, mission.issue_number)
    if (
        proposals.issue_hash(issue.get("title") or "", issue.get("body") or "")
        != current.issue_hash
    ):
        await replan(rt, mission, "The mission issue was edited after this revision was proposed.")
        return Answer(
            False,
            f"the mission issue was edited after revision `{current.revision}` was proposed, so "
            "it no longer applies. Claude is planning again from the new text.",
        )
    async with engine.transaction():
        decided = await store.decide(current.id, ProposalState.APPROVED, by=by)
        if decided is not None:
            await _enqueue_execution(decided)
    if decided is None:
        return Answer(False, "there is no proposal waiting for review any more.")
    await audit.record(
        actor=by,
        action="mission.approve",
        target=f"{mission.repository}#{mission.issue_number}",
        repository=mission.repository,
        issue_number=mission.issue_number,
        installation_id=mission.installation_id,
        after={"mission": mission.id, "revision": decided.revision},
    )
    count = len(decided.proposal["items"])
    await status.publish(
        rt,
        await store.get(mission.id) or mission,
        f"✅ Revision `{decided.revision}` approved by {by}: carrying out its {count} "
        f"item{'s' if count != 1 else ''}…",
    )
    return Answer(
        True,
        f"Approved revision `{decided.revision}`: Dispatch creates and dispatches exactly what it "
        "lists; the mission's status comment shows each item.",
    )


async def _enqueue_execution(proposal: Proposal) -> None:
    await queue.enqueue(
        jobs.EXECUTE_MISSION, {"proposal": proposal.id}, dedupe_key=f"mission-execute:{proposal.id}"
    )


# --- reject and replan


async def reject(rt: Runtime, mission: Mission, *, by: str, reason: str) -> Answer:
    current = await store.latest_proposal(mission.id)
    if current is None or current.state is not ProposalState.PROPOSED:
        if mission.state in (MissionState.PLANNING, MissionState.WAITING):
            return Answer(
                False, "Claude is still planning this mission; there is nothing to reject yet."
            )
        return Answer(False, "there is no mission proposal waiting for review on this issue.")
    async with engine.transaction():
        decided = await store.decide(current.id, ProposalState.REJECTED, by=by, feedback=reason)
        replanned = await store.plan_again(mission.id, feedback=reason) if decided else None
        if replanned is not None:
            await planning.enqueue_planning(replanned)
    if decided is None or replanned is None:
        return Answer(False, "there is no mission proposal waiting for review any more.")
    await audit.record(
        actor=by,
        action="mission.reject",
        target=f"{mission.repository}#{mission.issue_number}",
        repository=mission.repository,
        issue_number=mission.issue_number,
        installation_id=mission.installation_id,
        after={"mission": mission.id, "revision": current.revision},
        reason=reason,
    )
    await status.publish(
        rt, replanned, status.replanning(f"{by} rejected revision `{current.revision}`.")
    )
    return Answer(
        True,
        f"Rejected revision `{current.revision}`. Claude is planning again with your reason.",
    )


async def replan(rt: Runtime, mission: Mission, why: str) -> Mission | None:
    """Plan a live mission again from scratch (the issue changed under it)."""
    async with engine.transaction():
        replanned = await store.plan_again(mission.id, feedback=None)
        if replanned is not None:
            await planning.enqueue_planning(replanned)
    if replanned is not None:
        await status.publish(rt, replanned, status.replanning(why))
    return replanned


async def on_issue_edited(
    rt: Runtime, repository_id: int, number: int, title: str, body: str
) -> None:
    """An edit of a mission issue's title or body invalidates what was planned from it."""
    mission = await store.live_for_issue(repository_id, number)
    if mission is None or mission.state is MissionState.EXECUTING:
        return
    if mission.state is MissionState.PROPOSED:
        current = await store.latest_proposal(mission.id)
        if current is not None and proposals.issue_hash(title, body) == current.issue_hash:
            return  # Dispatch's own task list, or an edit that changed nothing that counts
    await replan(rt, mission, "The mission issue was edited.")


# --- execute


async def execute(rt: Runtime, proposal_id: int) -> None:
    proposal = await store.proposal(proposal_id)
    if proposal is None or proposal.state is not ProposalState.APPROVED:
        return
    mission = await store.get(proposal.mission_id)
    if mission is None:
        return
    client = rt.github.installation(mission.installation_id)
    items: list[dict[str, Any]] = proposal.proposal["items"]
    sequence = proposals.order(items)
    rows = {row.position: row for row in await store.items(proposal.id)}
    numbers: dict[str, int] = {}
    for position in sequence:
        item = items[position]
        row = rows.get(position)
        number = row.issue_number if row is not None else None
        if number is None:
            number = await _issue_for(rt, client, mission, proposal, position, item, numbers)
        numbers[item["key"]] = number
    await _write_tasks(rt, client, mission, proposal, numbers)
    rows = {row.position: row for row in await store.items(proposal.id)}
    for position in sequence:
        item = items[position]
        row = rows[position]
        if row.outcome is not ItemOutcome.PENDING:
            continue
        depends_on = [numbers[key] for key in item["depends_on"]]
        await store.update_item(proposal.id, position, depends_on=depends_on)
        if item["mode"] == "none":
            await store.update_item(
                proposal.id, position, outcome=ItemOutcome.NO_RUN, detail="no run (mode none)"
            )
            continue
        still_open = await _open_among(client, mission, depends_on)
        if still_open:
            await store.update_item(
                proposal.id,
                position,
                outcome=ItemOutcome.WAITING,
                detail="waits for " + ", ".join(f"#{n}" for n in still_open),
            )
            continue
        await _request_run(mission, proposal, position, numbers[item["key"]], item)
    await store.mark_executed(proposal.id, mission.id)
    await audit.record(
        actor=proposal.decided_by or "dispatch",
        action="mission.execute",
        target=f"{mission.repository}#{mission.issue_number}",
        repository=mission.repository,
        issue_number=mission.issue_number,
        installation_id=mission.installation_id,
        after={
            "mission": mission.id,
            "revision": proposal.revision,
            "issues": sorted(numbers.values()),
        },
    )
    await report(rt, proposal.id)


def _item_marker(proposal: Proposal, position: int) -> str:
    return rest.marker(f"mission-item:{proposal.id}:{position}")


async def _issue_for(
    rt: Runtime,
    client: GitHub,
    mission: Mission,
    proposal: Proposal,
    position: int,
    item: dict[str, Any],
    numbers: dict[str, int],
) -> int:
    """The item's issue: the existing one it names, or the one created for it (once)."""
    if item["kind"] == "existing_issue":
        await store.claim_item(proposal.id, position, rt.clock.now())
        await store.update_item(proposal.id, position, issue_number=item["number"])
        return int(item["number"])
    row, fresh = await store.claim_item(proposal.id, position, rt.clock.now())
    if row.issue_number is not None:
        return row.issue_number
    if not fresh:
        found = await _created_earlier(rt, client, mission, proposal, position)
        if found is not None:
            await store.update_item(proposal.id, position, issue_number=found)
            return found
    labels = [f"type/{item['type']}", f"priority/{item['priority']}", Status.READY.value]
    if item.get("duplicates"):
        labels.append(Signal.POSSIBLE_DUPLICATE.value)
    created = await rest.create_issue(
        client,
        mission.repository,
        proposals.title_text(item["title"]),
        _issue_body(rt, mission, proposal, position, item, numbers),
        labels,
    )
    number = int(created["number"])
    await store.update_item(proposal.id, position, issue_number=number)
    return number


def _issue_body(
    rt: Runtime,
    mission: Mission,
    proposal: Proposal,
    position: int,
    item: dict[str, Any],
    numbers: dict[str, int],
) -> str:
    hosts = markdown.github_hosts(rt.settings.github_web_url)
    lines = [proposals.untrusted_markdown(item["body"], hosts), "", "---"]
    after = [f"#{numbers[key]}" for key in item["depends_on"] if key in numbers]
    if after:
        lines.append(f"Depends on {', '.join(after)}.")
    for dup in item.get("duplicates", []):
        lines.append(f"⚠️ Possibly a duplicate of #{dup['number']} (similarity {dup['score']:.2f}).")
    lines += [
        f"Part of mission #{mission.issue_number} (revision `{proposal.revision}`), proposed by "
        f"Claude and approved by {proposal.decided_by}.",
        _item_marker(proposal, position),
    ]
    return "\n".join(lines)


async def _created_earlier(
    rt: Runtime, client: GitHub, mission: Mission, proposal: Proposal, position: int
) -> int | None:
    """An issue an earlier attempt created for this item (it died before noting the number)."""
    since = (proposal.decided_at or proposal.created_at) - timedelta(minutes=5)
    wanted = _item_marker(proposal, position)
    bot = await rt.github.bot_login()
    async for page in rest.list_issues(
        client, mission.repository, state="all", since=since.isoformat(), creator=bot
    ):
        for issue in page:
            if wanted in (issue.get("body") or "") and "pull_request" not in issue:
                return int(issue["number"])
    return None


async def _write_tasks(
    rt: Runtime, client: GitHub, mission: Mission, proposal: Proposal, numbers: dict[str, int]
) -> None:
    """The task list of the mission's issues in the mission issue's body (replaced in place)."""
    if not numbers:
        return
    items = proposal.proposal["items"]
    lines = [f"**Mission tasks** (revision `{proposal.revision}`)", ""]
    for item in items:
        number = numbers[item["key"]]
        run = item["mode"] if item["mode"] != "none" else "no run"
        after = [f"#{numbers[key]}" for key in item["depends_on"]]
        lines.append(f"- [ ] #{number} ({run}{', after ' + ', '.join(after) if after else ''})")
    issue = await rest.get_issue(client, mission.repository, mission.issue_number)
    body = issue.get("body") or ""
    updated = proposals.with_tasks(body, "\n".join(lines))
    if updated != body:
        await rest.update_issue(client, mission.repository, mission.issue_number, body=updated)


async def _open_among(client: GitHub, mission: Mission, numbers: list[int]) -> list[int]:
    """Which of these issues are still open (asked of GitHub: the decision starts agents)."""
    still: list[int] = []
    for number in numbers:
        try:
            issue = await rest.get_issue(client, mission.repository, number)
        except RequestFailed as exc:
            if rest.status_of(exc) in (404, 410):
                continue
            raise
        if issue.get("state") == "open":
            still.append(number)
    return still


async def _request_run(
    mission: Mission, proposal: Proposal, position: int, number: int, item: dict[str, Any]
) -> None:
    """Ask for the item's run through the one run-starting service and note the answer with
    it, in one transaction: a retry finds the item done instead of asking twice."""
    async with engine.transaction():
        result = await spawn.request_run(
            NewRun(
                installation_id=mission.installation_id,
                repository=mission.repository,
                repository_id=mission.repository_id,
                issue_number=number,
                mode=Mode(item["mode"]),
                trigger=Trigger.MISSION,
                requested_by=proposal.decided_by,
                notes=(
                    f"Part of mission {mission.repository}#{mission.issue_number} (revision "
                    f"{proposal.revision}), approved by {proposal.decided_by}."
                ),
            )
        )
        if isinstance(result, spawn.Refusal):
            await store.update_item(
                proposal.id, position, outcome=ItemOutcome.REFUSED, detail=result.reason
            )
        else:
            await store.update_item(
                proposal.id, position, outcome=ItemOutcome.REQUESTED, run_id=result.id
            )


async def on_issue_closed(rt: Runtime, repository_id: int, number: int) -> None:
    """Request the runs of mission items that waited for this issue (and now wait for none)."""
    touched: set[int] = set()
    for waiting in await store.waiting_on(repository_id, number):
        proposal = await store.proposal(waiting.proposal_id)
        mission = await store.get(waiting.mission_id)
        if proposal is None or mission is None:
            continue
        row = {r.position: r for r in await store.items(proposal.id)}[waiting.position]
        if row.outcome is not ItemOutcome.WAITING or row.issue_number is None:
            continue
        client = rt.github.installation(mission.installation_id)
        still_open = await _open_among(client, mission, row.depends_on)
        if still_open:
            await store.update_item(
                proposal.id,
                waiting.position,
                detail="waits for " + ", ".join(f"#{n}" for n in still_open),
            )
        else:
            await store.update_item(proposal.id, waiting.position, outcome=ItemOutcome.PENDING)
            item = proposal.proposal["items"][waiting.position]
            await _request_run(mission, proposal, waiting.position, row.issue_number, item)
        touched.add(proposal.id)
    for proposal_id in sorted(touched):
        await report(rt, proposal_id)


# --- the execution summary


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
    proposal = await store.proposal(proposal_id)
    if proposal is None:
        return
    mission = await store.get(proposal.mission_id)
    if mission is None:
        return
    items: list[dict[str, Any]] = proposal.proposal["items"]
    rows = {row.position: row for row in await store.items(proposal.id)}
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


async def give_up(rt: Runtime, proposal_id: int, exc: Exception) -> None:
    """The execution job failed for good: say what was done and how to carry on."""
    proposal = await store.proposal(proposal_id)
    mission = await store.get(proposal.mission_id) if proposal else None
    if proposal is None or mission is None:
        return
    await status.publish(
        rt,
        mission,
        f"⚠️ Carrying out revision `{proposal.revision}` stopped: Dispatch hit an error "
        f"(`{type(exc).__name__}`). What was done stays done; `/dispatch approve "
        f"{proposal.revision}` again carries on without doing anything twice.",
    )
