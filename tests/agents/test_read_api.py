"""The read API for harnesses, MCP clients and operators: one issue with its runs, plan and claim;
runs filtered and one run with its events; a run's log after a sequence number; the fleet against
its budgets. Every read needs a token and stays within its repositories."""

from __future__ import annotations

import pytest

from app.agents import kill_switches
from app.installations import service as installations
from app.issues import onboarding, repo_config
from app.tokens import service as tokens
from tests.harness import AGENT_WORKFLOW, drain


@pytest.fixture
async def world(rt, github, repo):
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    first = github.add_issue(repository, "Crash on save", labels=["status/ready", "type/bug"])
    second = github.add_issue(repository, "Slow search", labels=["status/ready"])
    other = github.add_repo(installation, "octo-org/secret")
    hidden = github.add_issue(other, "hidden", labels=["status/ready"])
    github.add_pull(other, "fix-hidden", body=f"Fixes #{hidden['number']}")
    # What the installation webhooks record (tests/installations covers them).
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository, other])
    for name in ("octo-org/widgets", "octo-org/secret"):
        await onboarding.onboard(rt, installation, name)
    return first["number"], second["number"], hidden["number"]


async def bearer(name, scope, repos=("octo-org/widgets",)):
    return {"authorization": f"Bearer {await tokens.create(name, scope, list(repos))}"}


async def test_issue_runs_log_and_fleet(rt, github, repo, client, world):
    installation, _ = repo
    first, second, hidden = world
    agent = await bearer("harness", "agent")
    reader = await bearer("reader", "read")
    admin = await bearer("ops", "admin", repos=())

    claim = (await client.post("/api/claims", json={"agent": "codex"}, headers=agent)).json()
    assert claim["issue"]["number"] == first
    run = (
        await client.post(
            "/api/runs",
            json={
                "repository": "octo-org/widgets",
                "issue": first,
                "mode": "investigate",
                "agent": "codex",
                "claim": claim["claim"]["id"],
            },
            headers=agent,
        )
    ).json()["run"]
    for seq, line in enumerate(["one\n", "two\n", "three\n"], start=1):
        await client.post(
            f"/api/runs/{run['id']}/log", json={"seq": seq, "data": line}, headers=agent
        )
    await client.post(f"/api/runs/{run['id']}/events", json={"type": "started"}, headers=agent)
    await client.post(
        f"/api/runs/{run['id']}/events",
        json={"type": "plan", "body": "## Summary\nFix the save path."},
        headers=agent,
    )
    await drain(rt)

    issue = await client.get(f"/api/issues/octo-org/widgets/{first}", headers=reader)
    assert issue.status_code == 200
    data = issue.json()
    assert data["title"] == "Crash on save" and "agent/codex" in data["labels"]
    assert [r["id"] for r in data["runs"]] == [run["id"]]
    assert data["plan"]["state"] == "proposed" and data["plan"]["run"] == run["id"]
    assert data["claim"]["agent"] == "codex" and data["claim"]["token"] == "harness"
    assert (
        await client.get("/api/issues/octo-org/widgets/9999", headers=reader)
    ).status_code == 404
    outside = await client.get(f"/api/issues/octo-org/secret/{hidden}", headers=reader)
    assert outside.status_code == 403

    shown = (await client.get(f"/api/runs/{run['id']}", headers=reader)).json()
    assert shown["state"] == "running"
    assert [e["type"] for e in shown["events"]] == ["started", "plan"]
    assert shown["events"][1]["body"].startswith("## Summary")

    listed = await client.get(
        "/api/runs", params={"repo": "octo-org/widgets", "state": "active"}, headers=reader
    )
    assert [r["id"] for r in listed.json()["runs"]] == [run["id"]]
    by_issue = await client.get(
        "/api/runs", params={"repo": "octo-org/widgets", "issue": second}, headers=reader
    )
    assert by_issue.json()["total"] == 0
    bad_state = await client.get("/api/runs", params={"state": "sleeping"}, headers=reader)
    assert bad_state.status_code == 422 and bad_state.json()["details"]["field"] == "state"

    log = (
        await client.get(f"/api/runs/{run['id']}/log", params={"after": 1}, headers=reader)
    ).json()
    assert [c["data"] for c in log["chunks"]] == ["two\n", "three\n"]
    assert log["next_after"] == 3 and log["finished"] is False

    fleet = (await client.get("/api/fleet", headers=reader)).json()
    [mine] = fleet["installations"]
    assert mine["installation"] == installation
    assert mine["repositories"] == ["octo-org/widgets"]  # the token's, not the installation's
    assert mine["modes"]["investigate"]["active"] == 1
    assert mine["modes"]["investigate"]["spawned_today"] == 1
    assert mine["modes"]["investigate"]["daily_spawns"] == 20
    assert mine["active_claims"] == 1 and mine["kill_switch"] == {"engaged": False}
    assert fleet["kill_switch"]["engaged"] is False

    await kill_switches.set_kill_switch(True, installation_id=None, reason="incident", by="ops")
    fleet = (await client.get("/api/fleet", headers=admin)).json()
    assert fleet["kill_switch"] == {"engaged": True, "reason": "incident"}


async def test_the_fleet_shows_todays_spend_and_the_budgets_a_repository_lowers(
    rt, github, repo, client, world
):
    installation, repository = repo
    first, _, _ = world
    github.add_file(
        repository,
        ".github/dispatch.yml",
        "budgets:\n  daily_spawns: {investigate: 5}\n  daily_cost_usd: 2.5\n",
    )
    await repo_config.refresh(rt, installation, "octo-org/widgets")
    agent = await bearer("harness", "agent")
    admin = await bearer("ops", "admin", repos=())
    run = (
        await client.post(
            "/api/runs",
            json={
                "repository": "octo-org/widgets",
                "issue": first,
                "mode": "investigate",
                "agent": "codex",
            },
            headers=agent,
        )
    ).json()["run"]
    done = await client.post(
        f"/api/runs/{run['id']}/events",
        json={
            "type": "completed",
            "outcome": "investigation_complete",
            "summary": "Found it.",
            "cost_usd": 1.25,
            "turns": 3,
        },
        headers=agent,
    )
    assert done.status_code == 202
    await drain(rt)

    [mine] = (await client.get("/api/fleet", headers=admin)).json()["installations"]

    assert mine["spend_today_usd"] == 1.25 and mine["daily_cost_limit_usd"] == 50
    assert mine["modes"]["investigate"]["daily_spawns"] == 20
    # The gates hold runs in octo-org/widgets to its own lower budgets; the fleet says so.
    assert mine["lower_repository_budgets"] == {
        "octo-org/widgets": {
            "modes": {"investigate": {"concurrency": 3, "daily_spawns": 5}},
            "daily_cost_limit_usd": 2.5,
        }
    }


async def test_other_repositories_runs_are_not_found(rt, github, repo, client, world):
    _, _, hidden = world
    ops = await bearer("ops", "dispatch", repos=())
    secret_reader = await bearer("reader", "read", repos=("octo-org/widgets",))
    run = (
        await client.post(
            "/api/runs",
            json={
                "repository": "octo-org/secret",
                "issue": hidden,
                "mode": "investigate",
                "agent": "codex",
            },
            headers=ops,
        )
    ).json()["run"]

    assert (await client.get(f"/api/runs/{run['id']}", headers=ops)).status_code == 200
    for path in (f"/api/runs/{run['id']}", f"/api/runs/{run['id']}/log"):
        assert (await client.get(path, headers=secret_reader)).status_code == 404
    listed = (await client.get("/api/runs", headers=secret_reader)).json()
    assert listed["total"] == 0
    assert (await client.get("/api/runs")).status_code == 401
