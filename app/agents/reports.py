"""Full reports: what a QA or research agent found, posted whole on the issue as one comment per
run, found again by its marker and edited in place (a retried job never posts it twice).

The agent's report is its words: made safe like a plan (no mentions, remote images or outside
links, credentials scrubbed) and cut at GitHub's limit, with a signed link to the whole text when
it is longer. A research report must end with a Sources section; when it has none, the comment
says so.
"""

from __future__ import annotations

import re

from app.agents import qa, runs
from app.agents.runs import Run, RunState
from app.github import markdown, rest
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
_HEADINGS = {Mode.QA: "🧪 QA report", Mode.RESEARCH: "🔎 Research report"}


def marker_name(run_id: int) -> str:
    return f"report:{run_id}"


def full_report_url(rt: Runtime, run_id: int) -> str:
    """A signed link to a run's whole report (comments are cut at GitHub's limit)."""
    token = rt.signer.sign(REPORT_LINK_PURPOSE, f"report:{run_id}", REPORT_LINK_DAYS * 86400)
    return f"{rt.settings.dispatch_url}/runs/{run_id}/report?token={token}"


def has_sources(report: str) -> bool:
    return _SOURCES.search(report) is not None


def render(rt: Runtime, run: Run) -> str:
    report = run.report or ""
    hosts = markdown.github_hosts(rt.settings.github_web_url)
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
