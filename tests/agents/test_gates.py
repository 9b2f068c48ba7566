"""Spawn gates: fifty concurrent requests against a budget of ten dispatch exactly ten; the kill
switch stops the next decision; refusals say why and when they clear."""

from __future__ import annotations

import asyncio

import pytest

from app.agents import runs
from app.db import engine
from tests.agents.loop import comment
from tests.conftest import make_settings
from tests.harness import AGENT_WORKFLOW, dispatch_cli, drain, settings_env
from tests.webhooks import signed


@pytest.fixture
def settings(tmp_path, github, oidc):
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        daily_spawn_budget_investigate=10,
        max_concurrent_spawns_investigate=100,
    )


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    return repo


async def test_fifty_concurrent_investigations_against_a_budget_of_ten(rt, github, client, project):
    installation, repository = project
    issues = [github.add_issue(repository, f"bug {i}", labels=["status/ready"]) for i in range(50)]
    for issue in issues:
        body, headers = signed(
            github.webhook_secret,
            "issue_comment",
            comment(github, project, issue["number"], "/dispatch investigate"),
        )
        assert (
            await client.post("/webhooks/github", content=body, headers=headers)
        ).status_code == 202

    # Two workers race for the same budget row.
    await asyncio.gather(drain(rt, concurrency=10), drain(rt, concurrency=10))

    assert len(github.dispatches(repository)) == 10
    async with engine.connection() as connection:
        states = dict(await connection.fetch("SELECT state, count(*) FROM run GROUP BY state"))
        spawned = await connection.fetchval("SELECT spawned FROM spawn_budget")
    assert states == {"dispatched": 10, "refused": 40}
    assert spawned == 10
    refused = [
        body
        for issue in issues
        for body in github.bot_comments(repository, issue["number"])
        if "Not started" in body
    ]
    assert len(refused) == 40
    assert all("budget is spent (10 of 10)" in body and "it clears at" in body for body in refused)
    assert all("\n> `/dispatch investigate`\n" in body for body in refused)


async def test_kill_switch_refuses_the_next_command_until_turned_off(
    rt, settings, database, github, deliver, project
):
    installation, repository = project
    first = github.add_issue(repository, "one")
    second = github.add_issue(repository, "two")
    env = settings_env(settings, database)

    (await dispatch_cli(env, "killswitch", "on", "--reason", "incident 42")).ok()
    await deliver(
        "issue_comment", comment(github, project, first["number"], "/dispatch investigate")
    )
    [refusal] = [b for b in github.bot_comments(repository, first["number"]) if "Not started" in b]
    assert "kill switch is on (incident 42)" in refusal
    assert github.dispatches(repository) == []

    (await dispatch_cli(env, "killswitch", "off")).ok()
    await deliver(
        "issue_comment", comment(github, project, second["number"], "/dispatch investigate")
    )
    assert len(github.dispatches(repository)) == 1


async def test_one_active_run_per_issue(rt, github, deliver, project):
    installation, repository = project
    issue = github.add_issue(repository, "one")
    await deliver(
        "issue_comment", comment(github, project, issue["number"], "/dispatch investigate")
    )
    await deliver(
        "issue_comment", comment(github, project, issue["number"], "/dispatch research why?")
    )

    answer = github.bot_comments(repository, issue["number"])[-1]
    assert "is already dispatched on this issue" in answer
    assert len(await runs.for_issue("octo-org/widgets", issue["number"])) == 1


async def test_missing_workflow_fails_the_run_and_says_what_to_copy(rt, github, repo, deliver):
    installation, repository = repo
    github.set_permission(repository, "alice", "write")
    issue = github.add_issue(repository, "one")

    await deliver("issue_comment", comment(github, repo, issue["number"], "/dispatch investigate"))

    [run] = await runs.for_issue("octo-org/widgets", issue["number"])
    assert run.state.value == "failed"
    status = github.bot_comments(repository, issue["number"])[-1]
    assert "workflows/dispatch-agent.yml" in status and "GitHub answered 404" in status
    async with engine.connection() as connection:
        assert await connection.fetchval("SELECT spawned FROM spawn_budget") == 0  # refunded
