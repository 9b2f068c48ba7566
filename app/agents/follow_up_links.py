"""The link a `revise` run leaves on the issue its pull request fixes: a comment, found again by
its hidden marker and edited as the run moves on, pointing to the run's status comment on the
pull request.
"""

from __future__ import annotations

from app.agents import status_comment
from app.agents.runs import Run, RunState, Trigger
from app.github import rest
from app.modes import Mode
from app.runtime import Runtime


def link_marker(run_id: int) -> str:
    return f"follow-up:{run_id}"


def status_url(rt: Runtime, run: Run) -> str | None:
    if run.status_comment_id is None:
        return None
    web = rt.settings.github_web_url.rstrip("/")
    return f"{web}/{run.repository}/pull/{run.issue_number}#issuecomment-{run.status_comment_id}"


def render_link(rt: Runtime, run: Run) -> str:
    shown = run.state.value.replace("_", " ")
    why = {
        Trigger.REVIEW: f"changes requested in a review by @{run.requested_by}",
        Trigger.COMMAND: f"`/dispatch revise` by @{run.requested_by}",
    }.get(run.trigger, f"asked by @{run.requested_by}" if run.requested_by else "asked")
    url = status_url(rt, run)
    where = f"[its status comment]({url})" if url else "its status comment"
    return (
        f"### {status_comment.ICONS[run.state]} Revision of pull request #{run.issue_number} · "
        f"run #{run.id} · {shown}\n\n"
        f"Review feedback on #{run.issue_number} went back to an agent ({why}). It works on the "
        f"pull request's branch and answers there: see {where}."
    )


async def link(rt: Runtime, run: Run) -> None:
    """Post or edit, on the issue the pull request fixes, the link to the run's status comment."""
    if run.mode is not Mode.REVISE or run.origin_issue is None or run.status_comment_id is None:
        return
    if run.state is RunState.REFUSED:
        return  # never started: the refusal is on the pull request
    client = rt.github.installation(run.installation_id)
    await rest.upsert_marked_comment(
        client,
        run.repository,
        run.origin_issue,
        link_marker(run.id),
        render_link(rt, run),
        bot_login=await rt.github.bot_login(),
    )
