"""The MCP tools' permissions and refusals, through the official client against the app served
in-process: scopes mean something (read lists and reads, agent also claims and reports, dispatch
also creates and dispatches), a refusal is a tool error saying why, every changing call is
audited with the token's name (refusals too), and text posted under the App's name is defused."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from app.agents import kill_switches, runs
from app.db import engine
from app.installations import service as installations
from app.issues import onboarding
from app.tokens import service as tokens
from tests.harness import AGENT_WORKFLOW


@pytest.fixture
async def world(rt, github, repo):
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    issue = github.add_issue(
        repository, "Crash on save", labels=["status/ready", "priority/p2", "type/bug"]
    )
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    return issue["number"]


def connect(client, token: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(f"{client.base_url}/mcp", http_client=http))


def text(result) -> str:
    return result.content[0].text


def data(result) -> dict:
    assert not result.is_error, text(result)
    return result.structured_content or json.loads(text(result))


async def test_scopes_mean_something(rt, github, repo, client, world):
    number = world
    reader = await tokens.create("reader", "read", [])
    agent = await tokens.create("harness", "agent", [])
    elsewhere = await tokens.create("elsewhere", "dispatch", ["octo-org/other"])
    where = {"repository": "octo-org/widgets", "number": number}

    async with connect(client, reader) as mcp:
        listed = data(await mcp.call_tool("list_issues", {"status": "ready"}))
        assert [i["number"] for i in listed["issues"]] == [number]
        assert data(await mcp.call_tool("get_issue", where))["title"] == "Crash on save"
        refused = await mcp.call_tool(
            "create_issue", {"repository": "octo-org/widgets", "title": "x"}
        )
        assert refused.is_error and "`dispatch` scope" in text(refused)
        refused = await mcp.call_tool("claim_next_issue", {"agent": "reader"})
        assert refused.is_error and "`agent` scope" in text(refused)

    async with connect(client, agent) as mcp:
        claimed = data(await mcp.call_tool("claim_next_issue", {"agent": "codex"}))
        assert claimed["issue"]["number"] == number
        refused = await mcp.call_tool("dispatch_investigation", where)
        assert refused.is_error and "`dispatch` scope" in text(refused)
        commented = data(
            await mcp.call_tool(
                "comment_on_issue",
                {**where, "body": "Working on it, @alice. ![x](https://evil.example/p.png)"},
            )
        )
        assert commented["comment"]
        empty = data(await mcp.call_tool("claim_next_issue", {"agent": "codex"}))
        assert empty["claim"] is None and "nothing is ready" in empty["message"]

    [posted] = [c for c in github.bot_comments(repo[1], number) if "Working on it" in c]
    assert "@alice" not in posted and "evil.example/p.png)" not in posted
    assert "API token `harness`" in posted

    async with connect(client, elsewhere) as mcp:
        refused = await mcp.call_tool("get_issue", where)
        assert refused.is_error and "not allowed" in text(refused)

    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT actor, action, outcome FROM audit_log WHERE action LIKE 'mcp.%' ORDER BY id"
        )
    assert [(r["actor"], r["action"], r["outcome"]) for r in rows] == [
        ("token:reader", "mcp.create_issue", "refused"),
        ("token:reader", "mcp.claim_next_issue", "refused"),
        ("token:harness", "mcp.claim_next_issue", "done"),
        ("token:harness", "mcp.dispatch_investigation", "refused"),
        ("token:harness", "mcp.comment_on_issue", "done"),
        ("token:harness", "mcp.claim_next_issue", "done"),
    ]


async def test_dispatch_refusals_say_why(rt, github, repo, client, world):
    number = world
    token = await tokens.create("ops", "dispatch", [])
    where = {"repository": "octo-org/widgets", "number": number}

    async with connect(client, token) as mcp:
        no_plan = await mcp.call_tool("dispatch_implementation", where)
        assert no_plan.is_error and "no approved plan" in text(no_plan)
        no_question = await mcp.call_tool("dispatch_research", where)
        assert no_question.is_error and "question" in text(no_question)

        await kill_switches.set_kill_switch(
            True, installation_id=None, reason="incident 42", by="ops"
        )
        stopped = await mcp.call_tool("dispatch_investigation", where)
        assert stopped.is_error
        assert "refused by the spawn gates" in text(stopped) and "incident 42" in text(stopped)
        await kill_switches.set_kill_switch(False, installation_id=None, reason=None, by="ops")

        no_pull = await mcp.call_tool("dispatch_qa", where)
        assert no_pull.is_error and "no pull request to check" in text(no_pull)
        pull = github.add_pull(repo[1], "fix-save", body=f"Fixes #{number}", title="Fix save")
        started = data(await mcp.call_tool("dispatch_qa", {**where, "instructions": "try it"}))
        assert started["run"]["mode"] == "qa" and started["run"]["state"] == "dispatched"
        qa_run = await runs.get(started["run"]["id"])
        assert qa_run.target_pull["number"] == pull["number"]
        again = await mcp.call_tool("dispatch_investigation", where)
        assert again.is_error and "already dispatched" in text(again)

        unknown = await mcp.call_tool("get_run", {"run_id": 999999})
        assert unknown.is_error and "not found" in text(unknown)
        missing = await mcp.call_tool("update_issue", {**where, "number": 4242, "title": "x"})
        assert missing.is_error and "not found" in text(missing)
        bad = await mcp.call_tool("release_claim", {"claim_id": 1, "outcome": "finished"})
        assert bad.is_error


async def test_update_issue_keeps_one_label_per_family(rt, github, repo, client, world):
    _, repository = repo
    number = world
    token = await tokens.create("ops", "dispatch", [])

    async with connect(client, token) as mcp:
        updated = data(
            await mcp.call_tool(
                "update_issue",
                {
                    "repository": "octo-org/widgets",
                    "number": number,
                    "title": "Crash on save (big files)",
                    "status": "backlog",
                    "priority": "p0",
                    "type": "feature",
                },
            )
        )

    assert updated["title"] == "Crash on save (big files)"
    assert sorted(github.label_names(repository, number)) == [
        "priority/p0",
        "status/backlog",
        "type/feature",
    ]
    assert updated["status"] == "status/backlog" and updated["priority"] == "priority/p0"
