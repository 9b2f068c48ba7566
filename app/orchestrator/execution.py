"""Carrying out an approved revision: a job that does exactly what the revision lists, and is
idempotent: each item has a row, claimed before its issue is created, so a retried job (or a
retried approval) never creates an issue twice — a claim left by a job that died after GitHub
created the issue is settled by finding the issue by its marker. Every run goes through the one
run-starting service (`spawn.request_run`): the spawn gates and budgets apply to each, a refusal
is reported for its item, and the other items go ahead. An item whose dependencies are still
open waits; it is requested when the last of them closes. What each item became is reported
by `progress.py`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from githubkit import GitHub
from githubkit.exception import RequestFailed

from app.agents import spawn
from app.agents.runs import NewRun, Trigger
from app.db import engine
from app.github import addresses, rest
from app.issues.labels import Signal, Status
from app.modes import Mode
from app.orchestrator import missions, progress, revisions, status
from app.orchestrator import proposal as proposals
from app.orchestrator.missions import Mission
from app.orchestrator.revisions import ItemOutcome, Proposal, ProposalState
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def execute(rt: Runtime, proposal_id: int) -> None:
    proposal = await revisions.proposal(proposal_id)
    if proposal is None or proposal.state is not ProposalState.APPROVED:
        return
    mission = await missions.get(proposal.mission_id)
    if mission is None:
        return
    client = rt.github.installation(mission.installation_id)
    items: list[dict[str, Any]] = proposal.proposal["items"]
    sequence = proposals.order(items)
    rows = {row.position: row for row in await revisions.items(proposal.id)}
    numbers: dict[str, int] = {}
    for position in sequence:
        item = items[position]
        row = rows.get(position)
        number = row.issue_number if row is not None else None
        if number is None:
            number = await _issue_for(rt, client, mission, proposal, position, item, numbers)
        numbers[item["key"]] = number
    await _write_tasks(rt, client, mission, proposal, numbers)
    rows = {row.position: row for row in await revisions.items(proposal.id)}
    for position in sequence:
        item = items[position]
        row = rows[position]
        if row.outcome is not ItemOutcome.PENDING:
            continue
        depends_on = [numbers[key] for key in item["depends_on"]]
        await revisions.update_item(proposal.id, position, depends_on=depends_on)
        if item["mode"] == "none":
            await revisions.update_item(
                proposal.id, position, outcome=ItemOutcome.NO_RUN, detail="no run (mode none)"
            )
            continue
        still_open = await _open_among(client, mission, depends_on)
        if still_open:
            await revisions.update_item(
                proposal.id,
                position,
                outcome=ItemOutcome.WAITING,
                detail="waits for " + ", ".join(f"#{n}" for n in still_open),
            )
            continue
        await _request_run(mission, proposal, position, numbers[item["key"]], item)
    # Once on the audit trail: a rerun (a retried job or approval) finds the revision noted.
    async with engine.transaction():
        if await revisions.mark_executed(proposal.id, mission.id):
            await missions.record_audit(
                mission,
                actor=proposal.decided_by or "dispatch",
                action="mission.execute",
                after={
                    "mission": mission.id,
                    "revision": proposal.revision,
                    "issues": sorted(numbers.values()),
                },
            )
    await progress.report(rt, proposal.id)


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
        await revisions.claim_item(proposal.id, position, rt.clock.now())
        await revisions.update_item(proposal.id, position, issue_number=item["number"])
        return int(item["number"])
    row, fresh = await revisions.claim_item(proposal.id, position, rt.clock.now())
    if row.issue_number is not None:
        return row.issue_number
    if not fresh:
        found = await _created_earlier(rt, client, mission, proposal, position)
        if found is not None:
            await revisions.update_item(proposal.id, position, issue_number=found)
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
    await revisions.update_item(proposal.id, position, issue_number=number)
    return number


def _issue_body(
    rt: Runtime,
    mission: Mission,
    proposal: Proposal,
    position: int,
    item: dict[str, Any],
    numbers: dict[str, int],
) -> str:
    hosts = addresses.github_hosts(rt.settings.github_web_url)
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
            await revisions.update_item(
                proposal.id, position, outcome=ItemOutcome.REFUSED, detail=result.reason
            )
        else:
            await revisions.update_item(
                proposal.id, position, outcome=ItemOutcome.REQUESTED, run_id=result.id
            )


async def on_issue_closed(rt: Runtime, repository_id: int, number: int) -> None:
    """Request the runs of mission items that waited for this issue (and now wait for none)."""
    touched: set[int] = set()
    for waiting in await revisions.waiting_on(repository_id, number):
        proposal = await revisions.proposal(waiting.proposal_id)
        mission = await missions.get(waiting.mission_id)
        if proposal is None or mission is None:
            continue
        row = {r.position: r for r in await revisions.items(proposal.id)}[waiting.position]
        if row.outcome is not ItemOutcome.WAITING or row.issue_number is None:
            continue
        client = rt.github.installation(mission.installation_id)
        still_open = await _open_among(client, mission, row.depends_on)
        if still_open:
            await revisions.update_item(
                proposal.id,
                waiting.position,
                detail="waits for " + ", ".join(f"#{n}" for n in still_open),
            )
        else:
            await revisions.update_item(proposal.id, waiting.position, outcome=ItemOutcome.PENDING)
            item = proposal.proposal["items"][waiting.position]
            await _request_run(mission, proposal, waiting.position, row.issue_number, item)
        touched.add(proposal.id)
    for proposal_id in sorted(touched):
        await progress.report(rt, proposal_id)


async def give_up(rt: Runtime, proposal_id: int, exc: Exception) -> None:
    """The execution job failed for good: say what was done and how to carry on."""
    proposal = await revisions.proposal(proposal_id)
    mission = await missions.get(proposal.mission_id) if proposal else None
    if proposal is None or mission is None:
        return
    await status.publish(
        rt,
        mission,
        f"⚠️ Carrying out revision `{proposal.revision}` stopped: Dispatch hit an error "
        f"(`{type(exc).__name__}`). What was done stays done; `/dispatch approve "
        f"{proposal.revision}` again carries on without doing anything twice.",
    )
