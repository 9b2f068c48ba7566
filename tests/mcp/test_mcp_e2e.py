"""End to end with the official MCP client: `dispatch serve` runs as a child process (web server
and worker), and the `mcp` SDK's streamable-HTTP client drives the whole loop — list the tools,
search, create an issue (seen at the fake GitHub), claim it, post a plan, report a blocker,
dispatch an investigation (the workflow dispatch seen at the fake GitHub). A wrong token is
refused when the client connects, and a rebound host name at once (those two against the app
served in the test's process: the same `/mcp` over HTTP, without a child process to start)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from app.db import engine
from app.installations import service as installations
from app.issues import onboarding
from app.tokens import service as tokens
from tests.harness import AGENT_WORKFLOW, ServerProcess, settings_env

TOOLS = {
    "search_issues",
    "list_issues",
    "get_issue",
    "create_issue",
    "update_issue",
    "comment_on_issue",
    "dispatch_investigation",
    "dispatch_implementation",
    "dispatch_qa",
    "plan_mission",
    "dispatch_research",
    "get_run",
    "read_run_log",
    "post_plan",
    "report_blocker",
    "claim_next_issue",
    "heartbeat_claim",
    "release_claim",
    "fleet_status",
}


def mcp_client(url: str, token: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(url, http_client=http))


def data(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content or json.loads(result.content[0].text)


async def eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)


@pytest.fixture
async def served(rt, settings, database, github, repo, tmp_path):
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.add_issue(
        repository,
        "Password reset email never arrives",
        "No email after clicking forgot password.",
        labels=["status/backlog"],
    )
    # What the installation webhooks record, then the issue cache.
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    server = ServerProcess(settings_env(settings, database)).start(tmp_path / "serve.log")
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.mark.slow
async def test_an_mcp_client_drives_the_whole_loop(served, github, repo):
    _, repository = repo
    token = await tokens.create("claude-code", "dispatch", ["octo-org/widgets"])
    url = f"{served.url}/mcp"

    async with mcp_client(url, token) as mcp:
        listed = await mcp.list_tools()
        assert {t.name for t in listed.tools} == TOOLS
        for described in listed.tools:
            assert described.description and described.input_schema["type"] == "object"

        found = data(await mcp.call_tool("search_issues", {"query": "password reset"}))
        assert found["issues"][0]["title"] == "Password reset email never arrives"

        created = data(
            await mcp.call_tool(
                "create_issue",
                {
                    "repository": "octo-org/widgets",
                    "title": "Checkout total is wrong with coupons",
                    "body": "Applying SAVE10 twice doubles the discount. cc @octo-org/billing",
                    "status": "ready",
                    "priority": "p0",
                    "type": "bug",
                },
            )
        )
        number = created["number"]
        at_github = github.issue(repository, number)
        assert at_github["title"] == "Checkout total is wrong with coupons"
        assert {label["name"] for label in at_github["labels"]} == {
            "status/ready",
            "priority/p0",
            "type/bug",
        }
        assert "@octo-org/billing" not in at_github["body"]
        assert "API token `claude-code`" in at_github["body"]

        claimed = data(await mcp.call_tool("claim_next_issue", {"agent": "claude-code"}))
        assert claimed["issue"]["number"] == number
        claim_id = claimed["claim"]["id"]
        labels = github.label_names(repository, number)
        assert "agent/claude-code" in labels and "status/in-progress" in labels

        beat = data(await mcp.call_tool("heartbeat_claim", {"claim_id": claim_id}))
        assert beat["claim"]["state"] == "active"

        planned = data(
            await mcp.call_tool(
                "post_plan",
                {
                    "claim_id": claim_id,
                    "body": "## Summary\nApply each coupon once.\n## Files\ncheckout.py",
                },
            )
        )
        assert planned["run"]["state"] == "succeeded"
        await eventually(lambda: "plan/proposed" in github.label_names(repository, number))
        plan_comment = await eventually(
            lambda: [c for c in github.bot_comments(repository, number) if "📋 Plan" in c]
        )
        assert "Apply each coupon once." in plan_comment[0]

        blocked = data(
            await mcp.call_tool(
                "report_blocker",
                {
                    "claim_id": claim_id,
                    "reason": "Which coupon wins when two apply?",
                    "category": "design_decision",
                },
            )
        )
        assert blocked["claim"]["state"] == "released"
        labels = github.label_names(repository, number)
        assert "dispatch/blocked" in labels and "agent/claude-code" not in labels
        assert any("Which coupon wins" in c for c in github.bot_comments(repository, number))

        refused = await mcp.call_tool(
            "dispatch_implementation", {"repository": "octo-org/widgets", "number": number}
        )
        assert refused.is_error and "waiting for review" in refused.content[0].text

        dispatched = data(
            await mcp.call_tool(
                "dispatch_investigation",
                {"repository": "octo-org/widgets", "number": number, "notes": "look at coupons"},
            )
        )
        run_id = dispatched["run"]["id"]
        assert dispatched["run"]["state"] == "dispatched"
        [dispatch] = await eventually(lambda: github.dispatches(repository))
        assert dispatch["inputs"]["run_id"] == str(run_id)
        assert dispatch["inputs"]["mode"] == "investigate"

        shown = data(await mcp.call_tool("get_run", {"run_id": run_id}))
        assert shown["requested_by"] == "token:claude-code" and shown["trigger"] == "mcp"
        issue = data(
            await mcp.call_tool("get_issue", {"repository": "octo-org/widgets", "number": number})
        )
        assert issue["plan"]["state"] == "proposed" and issue["claim"] is None
        fleet = data(await mcp.call_tool("fleet_status", {}))
        assert fleet["installations"][0]["modes"]["investigate"]["spawned_today"] == 2

    async with engine.connection() as connection:
        actors = {
            row["action"]: row["actor"]
            for row in await connection.fetch("SELECT action, actor FROM audit_log")
        }
    for action in (
        "mcp.create_issue",
        "issue.create",
        "claim.create",
        "mcp.post_plan",
        "claim.release",
        "mcp.dispatch_investigation",
        "run.dispatch",
    ):
        assert actors[action] == "token:claude-code", action


async def test_a_wrong_token_is_refused_at_connect(client):
    url = f"{client.base_url}/mcp"
    connected = False
    # The SDK raises its own error, wrapped in task groups.
    with pytest.raises(BaseException) as refused:
        async with mcp_client(url, "dsp_not-a-token"):
            connected = True
    assert not connected
    errors = [refused.value]
    while isinstance(errors[-1], BaseExceptionGroup):
        errors.append(errors[-1].exceptions[0])
    assert isinstance(errors[-1], MCPError), repr(refused.value)

    async with httpx.AsyncClient() as http:
        bare = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Bearer")


async def test_dns_rebinding_is_refused(client):
    token = await tokens.create("local", "read", [])
    async with httpx.AsyncClient() as http:
        rebound = await http.post(
            f"{client.base_url}/mcp",
            headers={
                "authorization": f"Bearer {token}",
                "host": "attacker.example",
                "accept": "application/json, text/event-stream",
            },
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
    assert rebound.status_code == 421
