"""Starting a mission and planning it with Claude.

`start` checks what can be checked at once (an Anthropic key, the daily cost budget, no other
live mission on the issue), records the mission and queues its planning in one transaction.

`plan` is a job. Each round is one call to Claude with the read-only tools and `propose`; the
conversation, the rounds and the cost are stored after every round, so a retried job (after a
crash, or after Anthropic said it is overloaded) carries on where it stopped instead of paying
for the same rounds twice. It ends in exactly one of: a validated proposal posted on the issue;
a wait (Anthropic overloaded, rate limited, failing or unreachable: the job is queued again with
backoff and the status comment says so); a refusal by the daily cost budget; or a failure that
says why (no key, a refused key or model, an unknown tool, invalid tool input, an invalid
proposal, no proposal within the rounds, Anthropic still down after every attempt). Never a
partial proposal, and never anything created or dispatched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from githubkit import GitHub

from app import jobs, queue
from app.agents import gates, spawn_budgets, spawn_limits
from app.audit import log as audit
from app.db import engine
from app.github import markdown, rest
from app.issues import repo_config
from app.issues.labels import Signal
from app.orchestrator import grounding, prompt, status, store, tools
from app.orchestrator import proposal as proposals
from app.orchestrator.claude import NOT_CONFIGURED, Claude, Refused, Turn, Unavailable
from app.orchestrator.proposal import InvalidProposal
from app.orchestrator.store import Mission, MissionState, Source
from app.runtime import Runtime

log = logging.getLogger(__name__)


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
    if command_id is not None and (own := await store.by_command(command_id)) is not None:
        return own  # this command's mission, from a retried job
    refusal = await budget_refusal(rt, installation_id, repository, starting=True)
    if refusal is not None:
        return Refusal(refusal)
    try:
        async with engine.transaction():
            mission = await store.create(
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
    except store.LiveMissionExists as exc:
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
        target=f"{repository}#{issue_number}",
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


# --- the planning job


class _Stop(Exception):
    """End this job: the mission failed (and was told so) or moved on without it."""


async def plan(rt: Runtime, mission_id: int, generation: int) -> None:
    mission = await store.get(mission_id)
    if (
        mission is None
        or mission.generation != generation
        or mission.state not in (MissionState.PLANNING, MissionState.WAITING)
    ):
        return
    try:
        await _plan(rt, mission)
    except _Stop:
        return


async def _plan(rt: Runtime, mission: Mission) -> None:
    settings = rt.settings
    if not settings.anthropic_api_key:
        await _fail(rt, mission, NOT_CONFIGURED.rstrip("."))
    if mission.rounds == 0 and mission.attempts == 0 and not mission.transcript:
        # Time may have passed since `start` (a queue backlog, a rejection): check again. Later
        # rounds check that the day is not spent before each call (`_round`).
        refusal = await budget_refusal(
            rt, mission.installation_id, mission.repository, starting=True
        )
        if refusal is not None:
            await _refuse(rt, mission, refusal)
    client = rt.github.installation(mission.installation_id)
    scope = tools.Scope(
        rt,
        client,
        mission.installation_id,
        mission.repository,
        mission.repository_id,
        mission.nonce,
        mission.issue_number,
    )
    conversation: list[dict[str, Any]] = list(mission.transcript)
    if not conversation:
        conversation = [{"role": "user", "content": await _opening(rt, client, mission)}]
    if mission.state is MissionState.PLANNING and mission.rounds == 0:
        await status.publish(
            rt, mission, status.planning(mission, settings.orchestrator_max_tool_rounds)
        )
    system = prompt.system_prompt(
        mission.repository, mission.nonce, settings.orchestrator_max_tool_rounds
    )
    claude = Claude(settings)
    try:
        while True:
            if conversation[-1]["role"] == "user":
                mission, turn = await _round(rt, claude, mission, system, conversation)
                if turn.stop_reason == "max_tokens":
                    await _fail(
                        rt,
                        mission,
                        "Claude's answer was cut at `ORCHESTRATOR_MAX_TOKENS` "
                        f"({settings.orchestrator_max_tokens}) before it finished; raise it",
                    )
                if turn.stop_reason == "refusal":
                    await _fail(rt, mission, "Claude declined to plan this request")
            mission = await _next(rt, scope, mission, conversation)
    finally:
        await claude.close()


async def _opening(rt: Runtime, client: GitHub, mission: Mission) -> str:
    issue = await rest.get_issue(client, mission.repository, mission.issue_number)
    previous = None
    if mission.feedback:
        rejected = await store.latest_proposal(mission.id)
        if rejected is not None:
            previous = _summary_of(rejected.proposal)
    return prompt.opening(
        repository=mission.repository,
        issue_number=mission.issue_number,
        issue_title=issue.get("title") or "",
        issue_body=proposals.without_tasks(issue.get("body") or ""),
        request=mission.request,
        requested_by=mission.requested_by,
        feedback=mission.feedback,
        previous_summary=previous,
        nonce=mission.nonce,
    )


def _summary_of(proposal: dict[str, Any]) -> str:
    lines = [proposal.get("summary", "")]
    for item in proposal.get("items", []):
        if item["kind"] == "new_issue":
            lines.append(
                f"- new issue: {item['title']} ({item['type']}, {item['priority']}, {item['mode']})"
            )
        else:
            lines.append(f"- dispatch #{item['number']} ({item['mode']})")
    return "\n".join(lines)


async def _round(
    rt: Runtime, claude: Claude, mission: Mission, system: str, conversation: list[dict[str, Any]]
) -> tuple[Mission, Turn]:
    """One call to Claude; its answer joins the conversation, which is stored with the round
    and its cost before anything acts on it."""
    settings = rt.settings
    if mission.rounds >= settings.orchestrator_max_tool_rounds:
        await _fail(
            rt,
            mission,
            f"Claude did not call `propose` within {settings.orchestrator_max_tool_rounds} rounds "
            "(`ORCHESTRATOR_MAX_TOOL_ROUNDS`)",
        )
    if mission.rounds > 0:
        if mission.cost_usd >= settings.orchestrator_max_cost_usd:
            await _fail(
                rt,
                mission,
                f"it reached its cost cap (${settings.orchestrator_max_cost_usd:.2f}, "
                "`ORCHESTRATOR_MAX_COST_USD`) before Claude proposed anything",
            )
        refusal = await budget_refusal(
            rt, mission.installation_id, mission.repository, starting=False
        )
        if refusal is not None:
            await _fail(rt, mission, f"the day's budget ran out while planning ({refusal})")
    try:
        turn = await claude.turn(
            system=system,
            messages=conversation,
            tools=tools.specs(),
            tool_choice={"type": "auto"},
        )
    except Unavailable as exc:
        await _wait(rt, mission, exc)
        raise _Stop from None
    except Refused as exc:
        await _fail(rt, mission, exc.why)
    now = rt.clock.now()
    await spawn_budgets.charge(
        mission.installation_id,
        turn.cost_usd,
        source="mission",
        reference=f"mission:{mission.id}",
        at=now,
    )
    if turn.content:
        conversation.append({"role": "assistant", "content": turn.content})
    updated = await store.update_if(
        mission.id,
        mission.generation,
        state=MissionState.PLANNING,
        transcript=conversation,
        rounds=mission.rounds + 1,
        attempts=0,
        error=None,
        cost_usd=mission.cost_usd + turn.cost_usd,
        input_tokens=mission.input_tokens + turn.input_tokens,
        output_tokens=mission.output_tokens + turn.output_tokens,
    )
    if updated is None:
        raise _Stop  # a newer planning (or the end of the mission) came first
    if not turn.content:
        conversation.append({"role": "user", "content": prompt.NUDGE})
    return updated, turn


async def _next(
    rt: Runtime, scope: tools.Scope, mission: Mission, conversation: list[dict[str, Any]]
) -> Mission:
    """Act on the model's last answer: run the read tools it called (their results become the
    next user turn), or take its proposal (and end), or nudge it to propose."""
    settings = rt.settings
    last = conversation[-1]
    if last["role"] == "user":
        return mission  # an empty answer, nudged in `_round`
    calls = [block for block in last["content"] if block.get("type") == "tool_use"]
    left = settings.orchestrator_max_tool_rounds - mission.rounds
    if not calls:
        conversation.append(
            {"role": "user", "content": f"{prompt.NUDGE}\n{prompt.rounds_left(left)}"}
        )
        return await _save(rt, mission, conversation)
    for call in calls:
        if call["name"] != tools.PROPOSE and call["name"] not in tools.TOOLS_BY_NAME:
            await _fail(
                rt,
                mission,
                f"Claude called {markdown.code_span(str(call['name'])[:100])}, a tool Dispatch "
                "does not offer (planning can only read and propose)",
            )
    proposing = [call for call in calls if call["name"] == tools.PROPOSE]
    if len(proposing) > 1:
        await _fail(rt, mission, "Claude called `propose` more than once in one answer")
    if proposing:
        await _take_proposal(rt, scope, mission, proposing[0]["input"])
        raise _Stop
    for call in calls:
        try:
            tools.parse_input(call["name"], call["input"])
        except tools.InvalidToolInput as exc:
            await _fail(
                rt,
                mission,
                f"Claude sent invalid input to `{exc.name}` "
                f"({markdown.inline_text('; '.join(exc.problems), 300)})",
            )
    results: list[dict[str, Any]] = []
    for call in calls:
        result = await tools.run(scope, call["name"], call["input"])
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": call["id"],
            "content": result.text or "(nothing)",
        }
        if result.is_error:
            block["is_error"] = True
        results.append(block)
    results.append({"type": "text", "text": prompt.rounds_left(left)})
    conversation.append({"role": "user", "content": results})
    mission = await _save(rt, mission, conversation)
    await status.publish(
        rt, mission, status.planning(mission, settings.orchestrator_max_tool_rounds)
    )
    return mission


async def _save(rt: Runtime, mission: Mission, conversation: list[dict[str, Any]]) -> Mission:
    updated = await store.update_if(mission.id, mission.generation, transcript=conversation)
    if updated is None:
        raise _Stop
    return updated


async def _wait(rt: Runtime, mission: Mission, exc: Unavailable) -> None:
    """Anthropic cannot answer now: queue the planning again with backoff (honouring its
    `retry-after`), or give up after `ORCHESTRATOR_ATTEMPTS`."""
    settings = rt.settings
    attempt = mission.attempts + 1
    if attempt >= settings.orchestrator_attempts:
        await _fail(
            rt,
            mission,
            f"{exc.why}, and still after {attempt} attempts",
        )
    delay = min(
        max(settings.orchestrator_retry_base_seconds * 2 ** (attempt - 1), exc.retry_after or 0),
        settings.orchestrator_retry_max_seconds,
    )
    async with engine.transaction():
        updated = await store.update_if(
            mission.id,
            mission.generation,
            state=MissionState.WAITING,
            attempts=attempt,
            error=exc.why,
        )
        if updated is not None:
            await enqueue_planning(updated, attempt=attempt, delay=delay)
    if updated is None:
        return
    log.info("mission waits for Anthropic", extra={"mission": mission.id, "why": exc.why})
    await status.publish(
        rt, updated, status.waiting(exc.why, delay, attempt, settings.orchestrator_attempts)
    )


async def _fail(rt: Runtime, mission: Mission, why: str) -> NoReturn:
    """End the mission with a failure that says why; raises _Stop."""
    updated = await store.update_if(
        mission.id, mission.generation, state=MissionState.FAILED, error=why
    )
    if updated is not None:
        log.info("mission failed", extra={"mission": mission.id, "why": why})
        await status.publish(rt, updated, status.failed(why, updated))
        await audit.record(
            actor="dispatch",
            action="mission.fail",
            target=f"{mission.repository}#{mission.issue_number}",
            repository=mission.repository,
            issue_number=mission.issue_number,
            installation_id=mission.installation_id,
            after={"mission": mission.id, "rounds": updated.rounds, "cost_usd": updated.cost_usd},
            outcome=audit.Outcome.FAILED,
            reason=why,
        )
    raise _Stop


async def _refuse(rt: Runtime, mission: Mission, reason: str) -> NoReturn:
    updated = await store.update_if(
        mission.id, mission.generation, state=MissionState.REFUSED, error=reason
    )
    if updated is not None:
        await status.publish(rt, updated, status.refused(reason))
        await audit.record(
            actor="dispatch",
            action="mission.refuse",
            target=f"{mission.repository}#{mission.issue_number}",
            repository=mission.repository,
            issue_number=mission.issue_number,
            installation_id=mission.installation_id,
            after={"mission": mission.id},
            outcome=audit.Outcome.REFUSED,
            reason=reason,
        )
    raise _Stop


async def give_up(rt: Runtime, mission_id: int, exc: Exception) -> None:
    """The planning job failed for good (GitHub or the database kept failing): say so."""
    mission = await store.get(mission_id)
    if mission is None or mission.state not in (MissionState.PLANNING, MissionState.WAITING):
        return
    try:
        await _fail(rt, mission, f"Dispatch hit an error while planning (`{type(exc).__name__}`)")
    except _Stop:
        return


# --- the proposal


async def _take_proposal(rt: Runtime, scope: tools.Scope, mission: Mission, raw: Any) -> None:
    """Validate the proposal, check it against the repository, post it; or fail the mission
    with every problem found (a proposal is taken whole or not at all)."""
    try:
        parsed = proposals.parse(raw)
        checked = await grounding.check(rt, scope, mission, parsed)
    except InvalidProposal as exc:
        listed = "; ".join(markdown.inline_text(p, 200) for p in exc.problems[:6])
        await _fail(rt, mission, f"Dispatch refused Claude's proposal ({listed})")
    client = scope.client
    issue = await rest.get_issue(client, mission.repository, mission.issue_number)
    bound = proposals.issue_hash(issue.get("title") or "", issue.get("body") or "")
    revision = proposals.revision_of(checked, bound)
    body = proposals.render(
        checked,
        proposals.RenderContext(
            revision=revision,
            model=rt.settings.orchestrator_model,
            rounds=mission.rounds,
            cost_usd=mission.cost_usd,
            allowed_hosts=markdown.github_hosts(rt.settings.github_web_url),
            embeddings=rt.embeddings is not None,
        ),
    )
    # Posted before it is recorded: a retry finds the comment by its marker, and the recorded
    # proposal always has its comment.
    comment_id = await rest.upsert_marked_comment(
        client,
        mission.repository,
        mission.issue_number,
        f"mission-proposal:{mission.id}:{revision}",
        body,
        bot_login=await rt.github.bot_login(),
    )
    stored = await store.add_proposal(mission, revision, checked, bound)
    if stored is None:
        return  # a newer planning started; its proposal will replace this one
    await store.set_proposal_comment(stored.id, comment_id)
    mission = await store.get(mission.id) or mission
    url = _comment_url(rt, mission, comment_id)
    await status.publish(rt, mission, status.proposed(mission, revision, url))
    await audit.record(
        actor="dispatch",
        action="mission.propose",
        target=f"{mission.repository}#{mission.issue_number}",
        repository=mission.repository,
        issue_number=mission.issue_number,
        installation_id=mission.installation_id,
        after={
            "mission": mission.id,
            "revision": revision,
            "items": len(checked["items"]),
            "rounds": mission.rounds,
            "cost_usd": round(mission.cost_usd, 6),
        },
    )


def _comment_url(rt: Runtime, mission: Mission, comment_id: int) -> str:
    return (
        f"{rt.settings.github_web_url}/{mission.repository}/issues/{mission.issue_number}"
        f"#issuecomment-{comment_id}"
    )
