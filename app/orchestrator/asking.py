"""Asking for a mission: starting one on an issue (`/dispatch ask`, the `dispatch/mission`
label), or opening a mission issue for a request first (`dispatch ask` on the command line, the
MCP tool `plan_mission`).

`start` checks what can be checked at once (an Anthropic key, the daily cost budget, no other
live mission on the issue), records the mission and queues its planning in one transaction.
Queueing a planning and the daily budget's check live here too: a planning that waits for
Anthropic, or starts again after a rejection, is queued the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app import jobs, queue
from app.agents import gates, spawn_limits
from app.audit import log as audit
from app.db import engine
from app.github import rest
from app.issues import repo_config
from app.issues.labels import Signal
from app.orchestrator import missions
from app.orchestrator.claude import NOT_CONFIGURED
from app.orchestrator.missions import Mission, Source
from app.runtime import Runtime


@dataclass(frozen=True)
class Refusal:
    """The mission was not started; `reason` says why (for a reply)."""

    reason: str


async def start(
    rt: Runtime,
    *,
    installation_id: int,
    repository: str,
    repository_id: int,
    issue_number: int,
    source: Source,
    request: str,
    requested_by: str | None,
    command_id: int | None = None,
) -> Mission | Refusal:
    """Record a mission and queue its planning, or say why not."""
    if not rt.settings.anthropic_api_key:
        return Refusal(NOT_CONFIGURED)
    if command_id is not None and (own := await missions.by_command(command_id)) is not None:
        return own  # this command's mission, from a retried job
    refusal = await budget_refusal(rt, installation_id, repository, starting=True)
    if refusal is not None:
        return Refusal(refusal)
    try:
        async with engine.transaction():
            mission = await missions.create(
                installation_id=installation_id,
                repository=repository,
                repository_id=repository_id,
                issue_number=issue_number,
                source=source,
                request=request,
                requested_by=requested_by,
                command_id=command_id,
            )
            await enqueue_planning(mission)
    except missions.LiveMissionExists as exc:
        if command_id is not None and exc.mission.command_id == command_id:
            return exc.mission
        return Refusal(
            f"mission #{exc.mission.id} is already {exc.mission.state.value} on this issue: "
            "approve or reject its proposal (`/dispatch reject <reason>` plans it again with "
            "your new instructions)."
        )
    await audit.record(
        actor=requested_by or "dispatch",
        action="mission.start",
        repository=repository,
        issue_number=issue_number,
        installation_id=installation_id,
        after={"mission": mission.id, "source": source.value},
    )
    return mission


# What fits in the mission issue's body (GitHub refuses one over 65,536 characters) with its
# footer.
MAX_REQUEST = 60_000


@dataclass(frozen=True)
class Opened:
    """A mission issue opened for a request, and its mission (or why it was not started)."""

    number: int
    url: str
    mission: Mission | Refusal


async def open_mission(
    rt: Runtime,
    *,
    installation_id: int,
    repository: str,
    repository_id: int,
    request: str,
    requested_by: str | None,
    source: Source,
) -> Opened | Refusal:
    """Open a mission issue for `request` (labelled `dispatch/mission`) and start planning it:
    `dispatch ask` on the command line and the MCP tool `plan_mission` (it only proposes).
    Refused before anything is opened when there is no key, the request is too long, or the
    daily cost budget would not allow the planning."""
    if not rt.settings.anthropic_api_key:
        return Refusal(NOT_CONFIGURED)
    if len(request) > MAX_REQUEST:
        return Refusal(f"the request is longer than {MAX_REQUEST:,} characters: say it shorter")
    refusal = await budget_refusal(rt, installation_id, repository, starting=True)
    if refusal is not None:
        return Refusal(refusal)
    first_line = " ".join(request.strip().splitlines()[0].split()) if request.strip() else ""
    title = first_line if len(first_line) <= 80 else first_line[:79].rsplit(" ", 1)[0] + "…"
    who = f"@{requested_by}" if requested_by else "an operator"
    how = "through Dispatch's MCP server" if source is Source.MCP else "with `dispatch ask`"
    body = (
        f"{request.strip()}\n\n---\nAsked by {who} {how}. Claude plans this mission; nothing "
        "is created or dispatched until someone with write permission approves its proposal here."
    )
    client = rt.github.installation(installation_id)
    issue = await rest.create_issue(
        client, repository, title or "Mission", body, [Signal.MISSION.value]
    )
    started = await start(
        rt,
        installation_id=installation_id,
        repository=repository,
        repository_id=repository_id,
        issue_number=int(issue["number"]),
        source=source,
        request=request.strip(),
        requested_by=requested_by,
    )
    return Opened(int(issue["number"]), str(issue.get("html_url") or ""), started)


async def enqueue_planning(mission: Mission, *, attempt: int = 0, delay: float = 0) -> None:
    await queue.enqueue(
        jobs.PLAN_MISSION,
        {"mission": mission.id, "generation": mission.generation},
        delay=timedelta(seconds=delay) if delay > 0 else None,
        dedupe_key=f"mission-plan:{mission.id}:{mission.generation}:{attempt}",
    )


async def budget_refusal(
    rt: Runtime, installation_id: int, repository: str, *, starting: bool
) -> str | None:
    """The daily cost budget's reason to refuse, or None. Starting, the mission must fit with
    everything it may spend (`ORCHESTRATOR_MAX_COST_USD`); later rounds only need the day not
    to be spent already."""
    loaded = await repo_config.load(rt, installation_id, repository)
    limit = spawn_limits.daily_cost_limit(rt.settings, loaded.config)
    more = rt.settings.orchestrator_max_cost_usd if starting else 0.0
    decision = await gates.cost_refusal(installation_id, limit, rt.clock.now(), more_usd=more)
    if decision is None:
        return None
    clears = f"; it clears at {decision.clears_at:%Y-%m-%d %H:%M} UTC" if decision.clears_at else ""
    return f"the daily cost budget: {decision.reason}{clears}"
