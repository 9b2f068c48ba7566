"""Full reports: what a QA or research agent found, or a revision's answer to its reviewers,
posted whole on the issue (a revision's: on its pull request) as one comment per run, found again
by its marker and edited in place (a retried job never posts it twice).

The agent's report is its words: made safe like a plan (no mentions, remote images or outside
links, credentials scrubbed) and cut at GitHub's limit, with a signed link to the whole text when
it is longer. A research report must end with a Sources section; when it has none, the comment
says so. A revision's answer should answer every review item it was shown (R1, C1 …); the
comment names those it does not, and says how many were not shown to the agent.
"""

from __future__ import annotations

import re
from typing import Any

from app.agents import qa, review_feedback, runs
from app.agents.runs import Run, RunState
from app.github import addresses, markdown, rest
from app.modes import Mode
from app.runtime import Runtime

# GitHub refuses comment bodies over 65,536 characters; leave room for the frame.
MAX_REPORT_CHARS = 60_000
REPORT_LINK_PURPOSE = "report"
REPORT_LINK_DAYS = 90
NO_SOURCES = (
    "⚠️ This report lists no sources: it has no Sources section, so check its claims before "
    "relying on them."
)
_SOURCES = re.compile(r"^\s{0,3}(?:#{1,6}\s*|\*\*)Sources\b", re.IGNORECASE | re.MULTILINE)
_HEADINGS = {
    Mode.QA: "🧪 QA report",
    Mode.RESEARCH: "🔎 Research report",
    Mode.REVISE: "🔁 Answer to the review",
}


def marker_name(run_id: int) -> str:
    return f"report:{run_id}"


def full_report_url(rt: Runtime, run_id: int) -> str:
    """A signed link to a run's whole report (comments are cut at GitHub's limit)."""
    token = rt.signer.sign(REPORT_LINK_PURPOSE, f"report:{run_id}", REPORT_LINK_DAYS * 86400)
    return f"{rt.settings.dispatch_url}/runs/{run_id}/report?token={token}"


def has_sources(report: str) -> bool:
    return _SOURCES.search(report) is not None


def unanswered(report: str, follow_up: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The review items the agent was shown whose tag its answer never names."""
    return [
        item
        for item in review_feedback.answerable(follow_up)
        if not re.search(rf"(?<![A-Za-z0-9]){item['ref']}(?![0-9])", report)
    ]


def _review_notes(report: str, run: Run) -> list[str]:
    notes = []
    missing = unanswered(report, run.follow_up)
    if missing:
        named = ", ".join(
            f"{item['ref']} ({markdown.inline_text(_where(item), 120)})" for item in missing
        )
        notes.append(f"⚠️ This answer says nothing about {named}.")
    hidden = review_feedback.not_shown(run.follow_up)
    if hidden:
        refs = ", ".join(item["ref"] for item in hidden)
        notes.append(
            f"🙈 Not shown to the agent ({refs}): written by people without write permission on "
            "this repository."
        )
    if run.pushed_sha:
        notes.append(f"Pushed {markdown.code_span(run.pushed_sha[:12])} to this pull request.")
    return notes


def _where(item: dict[str, Any]) -> str:
    if "path" not in item:
        return f"review by {item.get('author')}"
    line = f" line {item['line']}" if item.get("line") is not None else ""
    return f"{item.get('path')}{line}"


def render(rt: Runtime, run: Run) -> str:
    report = run.report or ""
    hosts = addresses.github_hosts(rt.settings.github_web_url)
    url = full_report_url(rt, run.id)
    more = f"_The report is longer than GitHub shows; [read all of it]({url})._"
    body = markdown.cut(markdown.agent_markdown(report.strip(), hosts), MAX_REPORT_CHARS, more)
    heading = _HEADINGS.get(run.mode, f"{run.mode.heading} report")
    title = f"### {heading} from run #{run.id}"
    pull = run.target_pull
    if pull:
        title += f" · pull request #{pull['number']} at `{str(pull['head_sha'])[:12]}`"
    parts = [title]
    if run.mode is Mode.QA:
        found = qa.verdict(report)
        parts.append(
            {"pass": "**Verdict: pass** ✅", "fail": "**Verdict: fail** ❌"}.get(
                found or "", "**No verdict** ⚠️ (the report has no `DISPATCH-VERDICT` line)"
            )
        )
    parts.append(body)
    if run.mode is Mode.RESEARCH and not has_sources(report):
        parts.append(NO_SOURCES)
    if run.mode is Mode.REVISE:
        parts.extend(_review_notes(report, run))
    return "\n\n".join(parts)


async def publish(rt: Runtime, run: Run) -> Run:
    """Post or edit the run's report comment (a run that succeeded with a report)."""
    if not run.mode.spec.posts_report or not run.report or run.state is not RunState.SUCCEEDED:
        return run
    client = rt.github.installation(run.installation_id)
    comment_id = await rest.upsert_marked_comment(
        client,
        run.repository,
        run.issue_number,
        marker_name(run.id),
        render(rt, run),
        bot_login=await rt.github.bot_login(),
        comment_id=run.report_comment_id,
    )
    if comment_id != run.report_comment_id:
        run = await runs.update(run.id, report_comment_id=comment_id)
    return run
