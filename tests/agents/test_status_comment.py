"""The status comment always reaches GitHub: an agent's blocker or summary longer than a comment
may be is cut, with a signed link to the whole report."""

from __future__ import annotations

import re

from app.agents import runs
from app.tokens import service as tokens
from tests.agents.loop import create_run
from tests.harness import drain


async def post_event(client, run, token, event):
    response = await client.post(
        f"/api/runs/{run.id}/events", json=event, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202, response.text
    return response


async def test_a_long_blocker_and_summary_are_cut_with_a_link_to_the_whole_report(
    rt, client, github, repo
):
    run = await create_run(github, repo, state="running", workflow_run_id=880001)
    token = await tokens.create("agent", "agent", [])
    reason = "The build needs a secret that is not set. " * 2500  # about 105,000 characters
    summary = "Tried every configuration in turn. " * 3000  # about 105,000 characters

    await post_event(
        client, run, token, {"type": "blocker", "reason": reason, "category": "missing_env"}
    )
    await drain(rt)
    [status] = github.bot_comments(repo[1], run.issue_number)
    assert len(status) <= 65_536
    assert "dispatch:run:" in status and "**Blocked** (missing_env)" in status

    done = {
        "type": "completed",
        "outcome": "blocked",
        "summary": summary,
        "cost_usd": 1,
        "turns": 3,
    }
    await post_event(client, run, token, done)
    await drain(rt)
    [status] = github.bot_comments(repo[1], run.issue_number)  # the same comment, edited
    assert len(status) <= 65_536
    link = re.search(r"\[read all of it\]\((\S+)\)", status)
    assert link is not None

    stored = await runs.get(run.id)
    assert stored.summary == summary  # kept whole, not only what the comment shows
    path = link[1].removeprefix(rt.settings.dispatch_url)
    report = await client.get(path)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/plain")
    assert report.headers["referrer-policy"] == "no-referrer"
    assert reason in report.text and summary in report.text
    other = path.replace(f"/runs/{run.id}/", f"/runs/{run.id + 1}/")
    assert (await client.get(other)).status_code == 404
    assert (await client.get(re.sub(r"token=.*", "token=x", path))).status_code == 404
