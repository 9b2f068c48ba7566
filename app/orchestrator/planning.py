"""Planning a mission with Claude: the planning job, round by round.

`plan` is a job. Each round is one call to Claude with the read-only tools and `propose`; the
conversation, the rounds and the cost are stored after every round, so a retried job (after a
crash, or after Anthropic said it is overloaded) carries on where it stopped instead of paying
for the same rounds twice. The model's answer is acted on between rounds: the read tools it
called are run and their results become the next turn. How a planning ends (a proposal, a wait,
a refusal or a failure) is in `endings.py`.
"""

from __future__ import annotations

from typing import Any

from githubkit import GitHub

from app.agents import spawn_budgets
from app.github import markdown, rest
from app.orchestrator import asking, endings, missions, prompt, revisions, status, tool_calls, tools
from app.orchestrator import proposal as proposals
from app.orchestrator.claude import NOT_CONFIGURED, Claude, Refused, Turn, Unavailable
from app.orchestrator.missions import Mission, MissionState
from app.runtime import Runtime


async def plan(rt: Runtime, mission_id: int, generation: int) -> None:
    mission = await missions.get(mission_id)
    if (
        mission is None
        or mission.generation != generation
        or mission.state not in (MissionState.PLANNING, MissionState.WAITING)
    ):
        return
    try:
        await _plan(rt, mission)
    except endings.Stop:
        return


async def _plan(rt: Runtime, mission: Mission) -> None:
    settings = rt.settings
    if not settings.anthropic_api_key:
        await endings.fail(rt, mission, NOT_CONFIGURED.rstrip("."))
    if mission.rounds == 0 and mission.attempts == 0 and not mission.transcript:
        # Time may have passed since `start` (a queue backlog, a rejection): check again. Later
        # rounds check that the day is not spent before each call (`_round`).
        refusal = await asking.budget_refusal(
            rt, mission.installation_id, mission.repository, starting=True
        )
        if refusal is not None:
            await endings.refuse(rt, mission, refusal)
    client = rt.github.installation(mission.installation_id)
    scope = tool_calls.Scope(
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
                    await endings.fail(
                        rt,
                        mission,
                        "Claude's answer was cut at `ORCHESTRATOR_MAX_TOKENS` "
                        f"({settings.orchestrator_max_tokens}) before it finished; raise it",
                    )
                if turn.stop_reason == "refusal":
                    await endings.fail(rt, mission, "Claude declined to plan this request")
            mission = await _next(rt, scope, mission, conversation)
    finally:
        await claude.close()


async def _opening(rt: Runtime, client: GitHub, mission: Mission) -> str:
    issue = await rest.get_issue(client, mission.repository, mission.issue_number)
    previous = None
    if mission.feedback:
        rejected = await revisions.latest_proposal(mission.id)
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
        await endings.fail(
            rt,
            mission,
            f"Claude did not call `propose` within {settings.orchestrator_max_tool_rounds} rounds "
            "(`ORCHESTRATOR_MAX_TOOL_ROUNDS`)",
        )
    if mission.rounds > 0:
        if mission.cost_usd >= settings.orchestrator_max_cost_usd:
            await endings.fail(
                rt,
                mission,
                f"it reached its cost cap (${settings.orchestrator_max_cost_usd:.2f}, "
                "`ORCHESTRATOR_MAX_COST_USD`) before Claude proposed anything",
            )
        refusal = await asking.budget_refusal(
            rt, mission.installation_id, mission.repository, starting=False
        )
        if refusal is not None:
            await endings.fail(rt, mission, f"the day's budget ran out while planning ({refusal})")
    try:
        turn = await claude.turn(
            system=system,
            messages=conversation,
            tools=tools.specs(),
            tool_choice={"type": "auto"},
        )
    except Unavailable as exc:
        await endings.wait(rt, mission, exc)
        raise endings.Stop from None
    except Refused as exc:
        await endings.fail(rt, mission, exc.why)
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
    updated = await missions.update_if(
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
        raise endings.Stop  # a newer planning (or the end of the mission) came first
    if not turn.content:
        conversation.append({"role": "user", "content": prompt.NUDGE})
    return updated, turn


async def _next(
    rt: Runtime, scope: tool_calls.Scope, mission: Mission, conversation: list[dict[str, Any]]
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
            await endings.fail(
                rt,
                mission,
                f"Claude called {markdown.code_span(str(call['name'])[:100])}, a tool Dispatch "
                "does not offer (planning can only read and propose)",
            )
    proposing = [call for call in calls if call["name"] == tools.PROPOSE]
    if len(proposing) > 1:
        await endings.fail(rt, mission, "Claude called `propose` more than once in one answer")
    if proposing:
        await endings.take_proposal(rt, scope, mission, proposing[0]["input"])
        raise endings.Stop
    for call in calls:
        try:
            tools.parse_input(call["name"], call["input"])
        except tools.InvalidToolInput as exc:
            await endings.fail(
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
    updated = await missions.update_if(mission.id, mission.generation, transcript=conversation)
    if updated is None:
        raise endings.Stop
    return updated


async def give_up(rt: Runtime, mission_id: int, exc: Exception) -> None:
    """The planning job failed for good (GitHub or the database kept failing): say so."""
    mission = await missions.get(mission_id)
    if mission is None or mission.state not in (MissionState.PLANNING, MissionState.WAITING):
        return
    try:
        await endings.fail(
            rt, mission, f"Dispatch hit an error while planning (`{type(exc).__name__}`)"
        )
    except endings.Stop:
        return
