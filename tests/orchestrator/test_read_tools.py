"""What the read-only planning tools answer Claude, checked against the data they read: the
runs (`read_runs`), the fleet today (`fleet_status`: active runs, spawn budgets, spend, the
kill switch) and the issues by label (`list_issues`)."""

from __future__ import annotations

import json
import re

import pytest

from app.agents import kill_switches, runs
from app.issues import repo_config
from app.orchestrator import missions
from tests.fakes.anthropic import tool_use
from tests.orchestrator.missions import ask, mission_comment, propose_input, say

REPO = "octo-org/widgets"


def fenced(result: str, label: str, nonce: str):
    """The JSON inside the result's untrusted fence."""
    found = re.search(
        rf"----- BEGIN UNTRUSTED {label} {nonce} -----\n(.*)\n----- END UNTRUSTED {label} {nonce}",
        result,
        re.DOTALL,
    )
    assert found, result
    return json.loads(found.group(1))


async def test_the_read_tools_answer_what_the_data_says(rt, github, repo, claude, deliver, project):
    _, repository = repo
    number = project["mission"]["number"]
    retries, docs = project["retries"]["number"], project["docs"]["number"]
    github.add_file(
        repository,
        ".github/dispatch.yml",
        "budgets:\n"
        "  daily_spawns: {investigate: 4}\n"
        "  max_concurrent: {research: 1}\n"
        "  daily_cost_usd: 7\n",
    )
    await repo_config.refresh(rt, repo[0], REPO)
    await deliver("issue_comment", say(github, repo, retries, "/dispatch investigate", "alice"))
    await deliver(
        "issue_comment",
        say(github, repo, docs, "/dispatch research how do others sign webhooks?", "alice"),
    )
    [investigation] = await runs.for_issue(REPO, retries)
    [research] = await runs.for_issue(REPO, docs)

    await kill_switches.set_kill_switch(
        True, installation_id=repo[0], reason="incident 42", by="operator"
    )

    claude.reply(
        tool_use("read_runs", {}),
        tool_use("read_runs", {"issue": retries}),
        tool_use("read_runs", {"issue": number}),
        tool_use("fleet_status", {}),
        tool_use("list_issues", {"type": "bug"}),
        tool_use("list_issues", {"status": "backlog"}),
        tool_use("list_issues", {}),
        usage=(1_000, 0),  # $0.003: the mission's own spend, charged before the tools run
    )
    claude.reply(tool_use("propose", propose_input(retries, docs)))
    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    assert "📋 Proposed" in mission_comment(github, repository, number)
    nonce = (await missions.latest_for_issue(repository["id"], number)).nonce
    every, on_retries, on_mission, fleet, bugs, backlog, open_issues = claude.requests[-1].results()

    # read_runs: the repository's runs newest first, or one issue's; none is said plainly.
    assert every.startswith("2 run(s), newest first:\n")
    assert [
        (r["run"], r["issue"], r["mode"], r["state"]) for r in fenced(every, "RUNS", nonce)
    ] == [
        (research.id, docs, "research", "dispatched"),
        (investigation.id, retries, "investigate", "dispatched"),
    ]
    assert [r["run"] for r in fenced(on_retries, "RUNS", nonce)] == [investigation.id]
    assert on_mission == f"No agent runs on issue #{number}."

    # fleet_status: the kill switch, today's spend against the limit, and per mode the active
    # runs, the concurrency limit, the spawns today and the day's budget (the repository's own
    # where it sets them).
    status = json.loads(fleet)
    assert status["kill_switch"].startswith("the kill switch is on for this installation")
    assert "incident 42" in status["kill_switch"]
    assert status["spend_today_usd"] == pytest.approx(0.003)
    assert status["daily_cost_limit_usd"] == 7.0
    modes = {m["mode"]: m for m in status["modes"]}
    assert modes["investigate"] == {
        "mode": "investigate",
        "active_runs": 1,
        "concurrency_limit": rt.settings.max_concurrent_spawns_investigate,
        "spawned_today": 1,
        "daily_spawn_budget": 4,
    }
    assert modes["research"]["active_runs"] == 1 and modes["research"]["spawned_today"] == 1
    assert modes["research"]["concurrency_limit"] == 1
    assert modes["implement"]["active_runs"] == 0 and modes["implement"]["spawned_today"] == 0

    # list_issues: by type, by status, and all open ones, most urgent first; never the mission
    # issue itself (its request is already in the prompt).
    assert bugs.startswith("1 issue(s) match; showing 1 from 0.")
    [bug] = fenced(bugs, "ISSUES", nonce)
    assert bug == {
        "number": retries,
        "state": "open",
        "status": "status/ready",
        "priority": "priority/p2",
        "labels": ["priority/p2", "status/ready", "type/bug"],
        "title": "Webhook deliveries retry in a tight loop",
    }
    assert [i["number"] for i in fenced(backlog, "ISSUES", nonce)] == [docs]
    assert open_issues.startswith("2 issue(s) match; showing 2 from 0.")
    assert [i["number"] for i in fenced(open_issues, "ISSUES", nonce)] == [retries, docs]
