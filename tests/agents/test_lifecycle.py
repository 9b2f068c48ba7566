"""Runs end even when the agent never says so: the workflow run's end, the watchdog, `cancel`;
a blocker is labelled; servers without run details bind the workflow run through its webhook."""

from __future__ import annotations

import pytest

from app.agents import lifecycle, runs
from tests.agents.loop import AUDIENCE, comment
from tests.harness import AGENT_WORKFLOW, drain
from tests.webhooks import for_repo


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    return repo


async def start(github, project, deliver):
    _, repository = project
    issue = github.add_issue(repository, "bug", labels=["status/ready"])
    await deliver(
        "issue_comment", comment(github, project, issue["number"], "/dispatch investigate")
    )
    [run] = await runs.for_issue("octo-org/widgets", issue["number"])
    return issue["number"], run


def workflow_run_payload(project, run, action, conclusion=None):
    installation, repository = project
    payload = for_repo("workflow_run/completed", installation, repository, action=action)
    payload["workflow_run"] = {
        **payload["workflow_run"],
        "id": run.workflow_run_id or 424242,
        "display_title": f"dispatch-run-{run.id}",
        "event": "workflow_dispatch",
        "path": ".github/workflows/dispatch-agent.yml",
        "conclusion": conclusion,
        "status": "completed" if action == "completed" else "in_progress",
    }
    return payload


async def test_workflow_run_that_ends_without_a_report_fails_the_run(github, project, deliver):
    number, run = await start(github, project, deliver)

    await deliver("workflow_run", workflow_run_payload(project, run, "completed", "failure"))

    ended = await runs.get(run.id)
    assert ended.state.value == "failed"
    assert "without the agent reporting completion" in ended.summary
    labels = github.label_names(project[1], number)
    assert "agent/claude" not in labels and "status/ready" in labels
    status = next(c for c in github.bot_comments(project[1], number) if f"run:{run.id}" in c)
    assert "failed" in status


async def test_runs_without_run_details_are_bound_by_the_workflow_run_webhook(
    github, project, deliver
):
    github.dispatch_supports_run_details = False
    try:
        number, run = await start(github, project, deliver)
    finally:
        github.dispatch_supports_run_details = True
    assert run.workflow_run_id is None and run.dispatch_sent_at is not None

    payload = workflow_run_payload(project, run, "requested")
    payload["workflow_run"]["id"] = 987654
    await deliver("workflow_run", payload)

    assert (await runs.get(run.id)).workflow_run_id == 987654


async def test_watchdog_times_out_silent_runs_and_cancels_them(rt, github, project, deliver, clock):
    number, run = await start(github, project, deliver)

    clock.advance(minutes=10)
    assert await lifecycle.watchdog(rt) == 0
    clock.advance(minutes=11)
    assert await lifecycle.watchdog(rt) == 1
    await drain(rt)

    assert (await runs.get(run.id)).state.value == "timed_out"
    assert github.calls_to("POST", rf"/actions/runs/{run.workflow_run_id}/cancel$")


async def test_cancel_stops_the_run_and_its_actions_run(github, project, deliver):
    number, run = await start(github, project, deliver)

    await deliver("issue_comment", comment(github, project, number, "/dispatch cancel"))

    assert (await runs.get(run.id)).state.value == "cancelled"
    assert github.calls_to("POST", rf"/actions/runs/{run.workflow_run_id}/cancel$")
    assert any(f"Cancelled run #{run.id}" in c for c in github.bot_comments(project[1], number))


async def test_blocker_is_labelled_and_explained(rt, github, project, deliver, client, oidc):
    number, run = await start(github, project, deliver)
    token = oidc.token(
        AUDIENCE,
        repository="octo-org/widgets",
        repository_id=project[1]["id"],
        run_id=run.workflow_run_id,
    )
    blocker = {
        "type": "blocker",
        "reason": "STRIPE_KEY is not set in CI",
        "category": "missing_env",
    }

    response = await client.post(
        f"/api/runs/{run.id}/events", json=blocker, headers={"authorization": f"Bearer {token}"}
    )
    await drain(rt)

    assert response.status_code == 202
    assert "dispatch/blocked" in github.label_names(project[1], number)
    status = next(c for c in github.bot_comments(project[1], number) if f"run:{run.id}" in c)
    assert "STRIPE_KEY is not set in CI" in status and "missing_env" in status


async def test_retry_runs_the_failed_run_again(github, project, deliver):
    number, run = await start(github, project, deliver)
    await deliver("workflow_run", workflow_run_payload(project, run, "completed", "failure"))

    await deliver("issue_comment", comment(github, project, number, "/dispatch retry"))

    latest = (await runs.for_issue("octo-org/widgets", number))[0]
    assert latest.id != run.id and latest.retry_of == run.id and latest.mode == run.mode
    assert len(github.dispatches(project[1])) == 2
