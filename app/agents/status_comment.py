"""The one status comment per run, found again by its hidden marker and edited in place as the
run moves: mode, state, elapsed time, cost, a link to the live stream, the result."""

from __future__ import annotations

from datetime import datetime

from app.agents import runs
from app.agents.runs import Run, RunState, Trigger
from app.github import addresses, markdown, rest
from app.installations import service as installations
from app.runtime import Runtime
from app.stream.links import viewer_url

ICONS = {
    RunState.QUEUED: "⏳",
    RunState.DISPATCHED: "🚀",
    RunState.RUNNING: "⚙️",
    RunState.SUCCEEDED: "✅",
    RunState.FAILED: "❌",
    RunState.CANCELLED: "⏹️",
    RunState.TIMED_OUT: "⌛",
    RunState.BLOCKED: "🚧",
    RunState.REFUSED: "😕",
}


def marker_name(run_id: int) -> str:
    return f"run:{run_id}"


def _elapsed(start: datetime | None, end: datetime) -> str:
    if start is None:
        return "—"
    seconds = int((end - start).total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


# Viewer links of public repositories' runs: anyone can read the status comment.
PUBLIC_LINK_DAYS = 1.0


# GitHub refuses comment bodies over 65,536 characters; leave room for the marker.
MAX_STATUS_CHARS = 60_000
SUMMARY_LINK_PURPOSE = "summary"
SUMMARY_LINK_DAYS = 90


def summary_url(rt: Runtime, run_id: int) -> str:
    """A signed link to the run's summary and blocker whole, which the status comment cuts to
    fit GitHub's limit."""
    token = rt.signer.sign(SUMMARY_LINK_PURPOSE, f"summary:{run_id}", SUMMARY_LINK_DAYS * 86400)
    return f"{rt.settings.dispatch_url}/runs/{run_id}/summary?token={token}"


def render(rt: Runtime, run: Run, *, public: bool = False) -> str:
    """The status comment, cut with a link to the agent's whole words when they make it longer
    than GitHub takes."""
    more = f"_This is longer than GitHub shows; [read all of it]({summary_url(rt, run.id)})._"
    return markdown.cut(_render(rt, run, public=public), MAX_STATUS_CHARS, more)


def _render(rt: Runtime, run: Run, *, public: bool) -> str:
    now = rt.clock.now()
    shown = run.state.value.replace("_", " ")
    title = f"### {ICONS[run.state]} {run.mode.heading} · run #{run.id} · {shown}"
    if run.state is RunState.REFUSED:
        quoted = f"{markdown.quoted_command(run.command_line)}\n\n" if run.command_line else ""
        who = f"@{run.requested_by} " if run.requested_by and not run.trigger.through_api else ""
        return f"{quoted}{title}\n\n{who}Not started: {run.refusal}."
    rows = [("requested by", _requester(run))]
    if run.trigger is Trigger.HARNESS:
        rows.append(("agent", f"{markdown.code_span(run.agent)}, run by its own harness"))
    if run.notes:
        rows.append(("notes", markdown.table_cell(run.notes)))
    started = run.started_at or run.dispatched_at
    end = run.finished_at or now
    rows.append(("elapsed", _elapsed(started, end)))
    if run.attempt > 1:
        rows.append(("attempt", f"{run.attempt} (the workflow run was re-run)"))
    if run.cost_usd is not None or run.turns is not None:
        rows.append(("cost", f"${run.cost_usd or 0:.2f} · {run.turns or 0} turns"))
    elif run.cost_cap_usd is not None:
        rows.append(("budget", f"up to ${run.cost_cap_usd:.2f}"))
    if run.viewer_key:
        days = min(PUBLIC_LINK_DAYS, rt.settings.stream_token_days) if public else None
        link = viewer_url(rt, run.id, run.viewer_key, days=days)
        rows.append(("live output", f"[watch the stream]({link})"))
    # Links that Dispatch did not make itself: only to GitHub.
    hosts = addresses.github_hosts(rt.settings.github_web_url)
    if workflow_run_url := addresses.safe_link(run.workflow_run_url, hosts):
        rows.append(("workflow run", f"[GitHub Actions]({workflow_run_url})"))
    if run.pr_number:
        pr_url = addresses.safe_link(run.pr_url, hosts)
        rows.append(
            ("pull request", f"[#{run.pr_number}]({pr_url})" if pr_url else f"#{run.pr_number}")
        )
    if run.target_pull:
        pull = run.target_pull
        sha = markdown.code_span(str(pull.get("head_sha") or "")[:12])
        pull_url = addresses.safe_link(pull.get("url"), hosts)
        shown = f"[#{int(pull['number'])}]({pull_url})" if pull_url else f"#{int(pull['number'])}"
        rows.append(
            ("checks" if run.mode.spec.checks_pull else "revises", f"pull request {shown} at {sha}")
        )
    if run.origin_issue is not None:
        rows.append(("for issue", f"#{run.origin_issue}"))
    if run.pushed_sha:
        rows.append(("pushed", f"{markdown.code_span(run.pushed_sha[:12])} to the pull request"))
    if run.report_comment_id:
        rows.append(("report", "the full report is in the comment below"))
    table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    parts = [title, table]
    if run.blocker_reason and run.state in (
        RunState.RUNNING,
        RunState.BLOCKED,
        RunState.DISPATCHED,
    ):
        reason = markdown.agent_markdown(
            run.blocker_reason, addresses.github_hosts(rt.settings.github_web_url)
        )
        parts.append(f"**Blocked** ({run.blocker_category}): {reason}")
    if run.summary and run.state.finished:
        summary = markdown.agent_markdown(
            run.summary, addresses.github_hosts(rt.settings.github_web_url)
        )
        parts.append(f"**Result** ({run.outcome}): {summary}")
    if run.issue_edited:
        parts.append(
            "📝 The issue was edited after its plan was approved; the agent works from the text "
            "the plan was made from. `/dispatch investigate` again to plan for the new text."
        )
    if run.mode.spec.ends_in_plan and run.state is RunState.SUCCEEDED:
        parts.append("Review the plan above: `/dispatch approve` or `/dispatch reject <reason>`.")
    return "\n\n".join(parts)


def _requester(run: Run) -> str:
    if not run.requested_by:
        return "Dispatch"
    if run.trigger.through_api:
        # An API token's name, never an @-mention of whoever has that login.
        return f"API token {markdown.code_span(run.requested_by.removeprefix('token:'))}"
    return f"@{run.requested_by}"


async def publish(rt: Runtime, run: Run) -> Run:
    """Create or edit the run's status comment; remembers its id on the run."""
    public = await installations.is_public(run.repository_id)
    client = rt.github.installation(run.installation_id)
    comment_id = await rest.upsert_marked_comment(
        client,
        run.repository,
        run.issue_number,
        marker_name(run.id),
        render(rt, run, public=public),
        bot_login=await rt.github.bot_login(),
        comment_id=run.status_comment_id,
    )
    if comment_id != run.status_comment_id:
        run = await runs.update(run.id, status_comment_id=comment_id)
    return run
