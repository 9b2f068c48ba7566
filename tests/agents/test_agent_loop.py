"""The heart of the product, end to end over HTTP: `/dispatch investigate` → workflow dispatch at
GitHub → the reporter (fed a recorded Claude stream) fetches its brief, streams its log and posts
a plan → plan comment and `plan/proposed`, while a viewer on a second server process receives
every chunk in order → `/dispatch approve` → `/dispatch implement` → a second dispatch → the
agent reports a PR and completes → labels and the status comment say so."""

from __future__ import annotations

import asyncio

import pytest

from app.agents import runs
from app.db import engine
from app.stream.links import viewer_token
from tests.agents.loop import STREAM_FIXTURES, Reporter, SSEReader, comment
from tests.harness import AGENT_WORKFLOW, ServerProcess, settings_env


@pytest.fixture
def project(github, repo):
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    github.set_permission(repository, "bob", "maintain")
    issue = github.add_issue(
        repository,
        "Checkout total is wrong with coupons",
        "Apply SAVE10 twice…",
        labels=["status/ready"],
    )
    return repo, issue


@pytest.mark.slow
async def test_investigate_plan_approve_implement(
    rt, settings, database, github, oidc, client, deliver, project, tmp_path
):
    (installation, repository), issue = project
    number = issue["number"]

    # 1. A developer asks for an investigation.
    await deliver(
        "issue_comment",
        comment(
            github, (installation, repository), number, "/dispatch investigate look at coupons"
        ),
    )
    [dispatch] = github.dispatches(repository)
    run = (await runs.for_issue("octo-org/widgets", number))[0]
    assert dispatch["workflow"] == "dispatch-agent.yml"
    assert dispatch["inputs"] == {
        "run_id": str(run.id),
        "mode": "investigate",
        "dispatch_url": settings.dispatch_url,
    }
    assert run.state.value == "dispatched" and run.workflow_run_id == dispatch["run_id"]
    labels = github.label_names(repository, number)
    assert "status/in-progress" in labels and "agent/claude" in labels
    [status] = github.bot_comments(repository, number)
    assert f"<!-- dispatch:run:{run.id} -->" in status and "watch the stream" in status

    # 2. A viewer connects to a *second* server process.
    other = ServerProcess(settings_env(settings, database), args=("--no-worker",))
    other.start(tmp_path / "second-server.log")
    try:
        await other.wait_ready()
        viewer = SSEReader(
            f"{other.url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
        ).start()
        await asyncio.wait_for(viewer.opened.wait(), 10)

        # 3. The workflow run: brief, the agent's stream, completion.
        workdir = tmp_path / "investigate"
        workdir.mkdir()
        reporter = Reporter.for_run(oidc, str(client.base_url), run, repository, workdir)
        await reporter("brief", "--out", "brief.json", "--prompt-out", "prompt.md")
        brief = reporter.brief()
        assert brief["mode"] == "investigate" and brief["notes"] == "look at coupons"
        assert brief["issue"]["title"] == "Checkout total is wrong with coupons"
        await reporter(
            "replay", str(STREAM_FIXTURES / "tool_session_parts.ndjson"), "--mode", "investigate"
        )
        await reporter("complete", "--mode", "investigate")
        await asyncio.wait_for(viewer.ended.wait(), 15)
    finally:
        other.stop()

    async with engine.connection() as connection:
        stored = [
            (r["seq"], r["data"])
            for r in await connection.fetch(
                "SELECT seq, data FROM log_chunk WHERE run_id = $1 ORDER BY seq", run.id
            )
        ]
    assert stored and viewer.logs() == stored  # every chunk, in order, none twice
    assert viewer.events[-1][0] == "end"

    await _drain(rt)
    plan_comments = [c for c in github.bot_comments(repository, number) if "📋 Plan from run" in c]
    assert len(plan_comments) == 1
    assert "plan/proposed" in github.label_names(repository, number)
    finished = await runs.get(run.id)
    assert finished.state.value == "succeeded" and finished.outcome == "investigation_complete"

    # 4. Review: a maintainer approves; then implementation.
    await deliver(
        "issue_comment",
        comment(github, (installation, repository), number, "/dispatch approve", user="bob"),
    )
    labels = github.label_names(repository, number)
    assert "plan/approved" in labels and "plan/proposed" not in labels

    await deliver(
        "issue_comment", comment(github, (installation, repository), number, "/dispatch implement")
    )
    dispatches = github.dispatches(repository)
    assert [d["inputs"]["mode"] for d in dispatches] == ["investigate", "implement"]
    implement = (await runs.for_issue("octo-org/widgets", number))[0]
    assert implement.mode.value == "implement" and implement.plan_id is not None

    workdir = tmp_path / "implement"
    workdir.mkdir()
    reporter = Reporter.for_run(oidc, str(client.base_url), implement, repository, workdir)
    await reporter("brief", "--out", "brief.json", "--prompt-out", "prompt.md")
    assert reporter.brief()["plan"]["body"] in plan_comments[0]
    await reporter("replay", str(STREAM_FIXTURES / "basic_query.ndjson"), "--mode", "implement")
    pull = github.add_pull(repository, reporter.brief()["branch"], body=f"Fixes #{number}")
    await reporter(
        "event", "pr", "--url", f"https://github.com/octo-org/widgets/pull/{pull['number']}"
    )
    await reporter("complete", "--mode", "implement")
    await _drain(rt)

    done = await runs.get(implement.id)
    assert (done.state.value, done.pr_number) == ("succeeded", pull["number"])
    labels = github.label_names(repository, number)
    assert "status/in-review" in labels and "agent/claude" not in labels
    status = next(
        c for c in github.bot_comments(repository, number) if f"dispatch:run:{implement.id}" in c
    )
    assert "succeeded" in status and f"[#{pull['number']}]" in status and "$0.14" in status


async def _drain(rt):
    from tests.harness import drain

    await drain(rt)


async def test_approval_binds_to_the_revision_and_self_approval_is_refused(
    rt, github, oidc, client, deliver, project, tmp_path
):
    (installation, repository), issue = project
    number = issue["number"]
    await deliver(
        "issue_comment",
        comment(github, (installation, repository), number, "/dispatch investigate"),
    )
    run = (await runs.for_issue("octo-org/widgets", number))[0]
    reporter = Reporter.for_run(oidc, str(client.base_url), run, repository, tmp_path)
    await reporter("event", "plan", "--json", '{"body": "## Summary\\nFirst idea"}')
    await _drain(rt)

    await deliver(
        "issue_comment", comment(github, (installation, repository), number, "/dispatch approve")
    )
    refusal = github.bot_comments(repository, number)[-1]
    assert "\n> `/dispatch approve`" in refusal and "someone else approves it" in refusal

    # A newer plan supersedes the first; approval is for what is on the table now.
    await reporter("event", "plan", "--json", '{"body": "## Summary\\nBetter idea"}')
    await _drain(rt)
    await deliver(
        "issue_comment",
        comment(github, (installation, repository), number, "/dispatch approve", user="bob"),
    )
    from app.agents import plans

    latest = await plans.latest(repository["id"], number)
    assert latest.state == "approved" and "Better idea" in latest.body
