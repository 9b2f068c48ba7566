"""The mission's one status comment on its issue, found by its marker and edited in place as the
mission moves: planning (round n), waiting for Anthropic, proposed, refused, failed (why, and how
to try again), approved and carried out (item by item)."""

from __future__ import annotations

from app.github import markdown, rest
from app.orchestrator import missions
from app.orchestrator.missions import Mission
from app.runtime import Runtime


def marker(mission: Mission) -> str:
    return f"mission:{mission.id}"


def header(mission: Mission) -> str:
    who = f" asked by @{mission.requested_by}" if mission.requested_by else ""
    return f"### 🧭 Mission #{mission.id}{who}"


async def publish(rt: Runtime, mission: Mission, text: str) -> int:
    """Post or edit the mission's status comment; returns its id (stored on the mission)."""
    client = rt.github.installation(mission.installation_id)
    comment_id = await rest.upsert_marked_comment(
        client,
        mission.repository,
        mission.issue_number,
        marker(mission),
        f"{header(mission)}\n\n{text}",
        bot_login=await rt.github.bot_login(),
        comment_id=mission.status_comment_id,
    )
    if comment_id != mission.status_comment_id:
        await missions.update(mission.id, status_comment_id=comment_id)
    return comment_id


def spend(mission: Mission) -> str:
    return f"{mission.rounds} round{'s' if mission.rounds != 1 else ''}, ${mission.cost_usd:.4f}"


def planning(mission: Mission, max_rounds: int) -> str:
    if mission.rounds == 0:
        return (
            "🔎 Claude is reading the repository's issues and code to plan this. Nothing is "
            "created or dispatched until someone approves the proposal."
        )
    return (
        f"🔎 Planning: round {mission.rounds} of at most {max_rounds} ({spend(mission)} so far). "
        "Nothing is created or dispatched until someone approves the proposal."
    )


def waiting(why: str, wait_seconds: float, attempt: int, attempts: int) -> str:
    return (
        f"⏳ Waiting: {why}. Dispatch tries again in {_duration(wait_seconds)} "
        f"(attempt {attempt + 1} of {attempts})."
    )


RETRY_HINT = (
    "To try again: `/dispatch ask <what you want>` on this issue, or remove and add the "
    "`dispatch/mission` label."
)


def failed(why: str, mission: Mission) -> str:
    return (
        f"❌ The mission failed: {why}.\n\nNothing was created or dispatched "
        f"({spend(mission)} spent). {RETRY_HINT}"
    )


def refused(reason: str) -> str:
    return (
        f"💸 Not planned: {reason}. Nothing was spent, created or dispatched. Ask again when the "
        "budget allows."
    )


def proposed(mission: Mission, revision: str, comment_url: str | None) -> str:
    where = f"[the proposal]({comment_url})" if comment_url else "the proposal below"
    return (
        f"📋 Proposed: revision `{revision}` ({spend(mission)}). Read {where}, then "
        f"`/dispatch approve {revision}` or `/dispatch reject <reason>`."
    )


def replanning(why: str) -> str:
    return f"🔁 {why} Claude is planning again; the earlier proposal can no longer be approved."


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(round(seconds), 0)} s"
    return f"{round(seconds / 60)} min"


def text_cell(value: str, limit: int = 200) -> str:
    return markdown.inline_text(value, limit)
