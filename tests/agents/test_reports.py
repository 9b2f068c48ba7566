"""QA and research post their whole report: one marked comment per run, edited rather than posted
again when its job is retried, cut at GitHub's limit with a signed link to the whole text, and
a research report without sources says so."""

from __future__ import annotations

import re

import pytest

from app.agents import runs
from tests.agents.loop import comment
from tests.agents.test_qa import completed, report
from tests.harness import AGENT_WORKFLOW, drain


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    return repo


async def research(github, project, deliver, question: str = "which queue fits?"):
    issue = github.add_issue(project[1], "Pick a queue")
    await deliver(
        "issue_comment", comment(github, project, issue["number"], f"/dispatch research {question}")
    )
    [run] = await runs.for_issue("octo-org/widgets", issue["number"])
    return issue["number"], run


def reports_on(github, project, number: int) -> list[dict]:
    return [c for c in github.comments(project[1], number) if "dispatch:report:" in c["body"]]


SOURCES = "## Sources\n- https://github.com/janbjorge/pgqueuer\n"


async def test_a_long_report_is_cut_with_a_link_to_the_whole_text(
    rt, github, oidc, client, project, deliver
):
    number, run = await research(github, project, deliver)
    text = "## Findings\n" + "".join(f"Line {i}: " + "x" * 60 + "\n" for i in range(1000))
    text += SOURCES
    assert len(text) > 70_000

    assert (await report(rt, oidc, client, run, completed(text))).status_code == 202
    await drain(rt)

    [posted] = reports_on(github, project, number)
    body = posted["body"]
    assert len(body) <= 65_536
    assert body.startswith(f"<!-- dispatch:report:{run.id} -->\n### 🔎 Research report")
    assert "Line 0: " in body and "Line 999: " not in body
    link = re.search(
        r"\[read all of it\]\((http://dispatch\.test(/runs/\d+/report\?token=[^)]+))\)", body
    )
    assert link is not None
    whole = await client.get(link.group(2))
    assert whole.status_code == 200 and whole.text == text
    assert whole.headers["content-type"].startswith("text/plain")
    # The link opens this run's report only.
    assert (await client.get(f"/runs/{run.id}/report?token=forged")).status_code == 404
    stored = await runs.get(run.id)
    assert stored.report == text and stored.report_comment_id == posted["id"]


async def test_a_retried_report_job_posts_the_report_once(
    rt, github, oidc, client, project, deliver
):
    number, run = await research(github, project, deliver)
    # GitHub posts the report, but the answer is lost: the job fails and runs again.
    github.drop_next(
        applied=True, method="POST", path=f"/repos/octo-org/widgets/issues/{number}/comments"
    )

    event = completed("Use pgqueuer.\n" + SOURCES)
    assert (await report(rt, oidc, client, run, event)).status_code == 202
    await drain(rt)

    [posted] = reports_on(github, project, number)
    assert "Use pgqueuer." in posted["body"]
    assert (await runs.get(run.id)).report_comment_id == posted["id"]
    posts = github.calls_to("POST", f"/repos/octo-org/widgets/issues/{number}/comments")
    assert [call.status for call in posts][-1] == 0  # the lost answer; never posted again
    # Retried by hand (a redelivered job): still one report.
    from app.agents import lifecycle

    await lifecycle.effects(rt, {"run": run.id, "event": "completed"})
    assert len(reports_on(github, project, number)) == 1


async def test_a_research_report_without_sources_says_so(
    rt, github, oidc, client, project, deliver
):
    number, run = await research(github, project, deliver)

    text = "Use pgqueuer, ask @octocat. ![x](https://evil.example/pixel.png)"
    assert (await report(rt, oidc, client, run, completed(text))).status_code == 202
    await drain(rt)

    [posted] = reports_on(github, project, number)
    assert "This report lists no sources" in posted["body"]
    assert "@octocat" not in posted["body"] and "evil.example/pixel.png)" not in posted["body"]


async def test_a_research_report_with_sources_has_no_warning(
    rt, github, oidc, client, project, deliver
):
    number, run = await research(github, project, deliver)

    assert (
        await report(rt, oidc, client, run, completed("Use pgqueuer.\n\n" + SOURCES))
    ).status_code == 202
    await drain(rt)

    [posted] = reports_on(github, project, number)
    assert "no sources" not in posted["body"] and "## Sources" in posted["body"]
    status = next(
        c for c in github.bot_comments(project[1], number) if f"dispatch:run:{run.id}" in c
    )
    assert "the full report is in the comment below" in status


async def test_an_investigation_posts_no_report(rt, github, oidc, client, project, deliver):
    issue = github.add_issue(project[1], "Slow checkout")
    await deliver(
        "issue_comment", comment(github, project, issue["number"], "/dispatch investigate")
    )
    [run] = await runs.for_issue("octo-org/widgets", issue["number"])

    event = {**completed("## Summary\nok"), "outcome": "investigation_complete"}
    assert (await report(rt, oidc, client, run, event)).status_code == 202
    await drain(rt)

    assert reports_on(github, project, issue["number"]) == []
    assert (await runs.get(run.id)).report is None
