"""Harness runs: a harness registers the run it starts itself (`POST /api/runs`). The spawn gates
and budgets apply as to dispatched runs (a refusal is a 429 saying which gate and when it clears),
nothing is dispatched to GitHub Actions, and the run then lives like any other: announced on the
issue, briefed, reported on, streamed, and its cost counts against the day's budget."""

from __future__ import annotations

import pytest

from app.agents import runs
from app.claims import records as claims
from app.issues import onboarding
from app.tokens import service as tokens
from tests.conftest import make_settings
from tests.harness import AGENT_WORKFLOW, drain


@pytest.fixture
def settings(tmp_path, github, oidc):
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        daily_spawn_budget_investigate=2,
        max_concurrent_spawns_investigate=5,
        max_concurrent_spawns_qa=1,
        daily_cost_limit_usd=4.0,
    )


@pytest.fixture
async def issues(rt, github, repo):
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    made = [
        github.add_issue(repository, f"bug {i}", "It breaks.", labels=["status/ready"])
        for i in range(4)
    ]
    for issue in made[2:]:  # what a qa run checks
        github.add_pull(repository, f"fix-{issue['number']}", body=f"Fixes #{issue['number']}")
    await onboarding.onboard(rt, installation, repository["full_name"])
    return [issue["number"] for issue in made]


async def bearer(name="harness", scope="agent", repos=("octo-org/widgets",)):
    return {"authorization": f"Bearer {await tokens.create(name, scope, list(repos))}"}


def body(number, mode="investigate", agent="codex", **extra):
    return {
        "repository": "octo-org/widgets",
        "issue": number,
        "mode": mode,
        "agent": agent,
        **extra,
    }


async def test_a_harness_run_passes_the_gates_and_lives_like_any_run(
    rt, github, repo, client, issues
):
    _, repository = repo
    headers = await bearer()
    number = issues[0]

    created = await client.post("/api/runs", json=body(number), headers=headers)

    assert created.status_code == 201, created.text
    run = created.json()["run"]
    assert (run["state"], run["trigger"], run["agent"]) == ("dispatched", "harness", "codex")
    assert run["requested_by"] == "token:harness"
    assert github.dispatches(repository) == []  # nothing goes to GitHub Actions
    await drain(rt)
    labels = github.label_names(repository, number)
    assert "status/in-progress" in labels and "agent/codex" in labels
    [status] = github.bot_comments(repository, number)
    assert f"dispatch:run:{run['id']}" in status and "watch the stream" in status
    assert "API token `token:harness`" not in status and "API token `harness`" in status
    assert "@token" not in status

    brief = await client.get(f"/api/runs/{run['id']}/brief", headers=headers)
    assert brief.status_code == 200 and brief.json()["issue"]["number"] == number
    started = await client.post(
        f"/api/runs/{run['id']}/events", json={"type": "started"}, headers=headers
    )
    assert started.json()["state"] == "running"
    logged = await client.post(
        f"/api/runs/{run['id']}/log", json={"seq": 1, "data": "reading the code\n"}, headers=headers
    )
    assert logged.json()["stored"] is True
    done = await client.post(
        f"/api/runs/{run['id']}/events",
        json={
            "type": "completed",
            "outcome": "investigation_complete",
            "summary": "Found it.",
            "cost_usd": 3.5,
            "turns": 12,
        },
        headers=headers,
    )
    assert done.status_code == 202
    await drain(rt)

    finished = await runs.get(run["id"])
    assert (finished.state.value, finished.cost_usd) == ("succeeded", 3.5)
    labels = github.label_names(repository, number)
    assert "agent/codex" not in labels and "status/ready" in labels
    [status] = github.bot_comments(repository, number)
    assert "$3.50" in status and "succeeded" in status

    # Its cost counts: today's spend is now 3.50 of 4.00, the next run still fits, then not.
    second = await client.post("/api/runs", json=body(issues[1]), headers=headers)
    assert second.status_code == 201
    await client.post(
        f"/api/runs/{second.json()['run']['id']}/events",
        json={
            "type": "completed",
            "outcome": "investigation_complete",
            "summary": "ok",
            "cost_usd": 1.0,
            "turns": 1,
        },
        headers=headers,
    )
    over = await client.post("/api/runs", json=body(issues[2], mode="qa"), headers=headers)
    assert over.status_code == 429, over.text
    assert over.json()["details"]["gate"] == "daily_cost_budget"
    assert over.json()["details"]["clears_at"] and "Retry-After" in over.headers


async def test_refusals_are_429_with_the_gate_and_when_it_clears(rt, github, repo, client, issues):
    headers = await bearer()

    first = await client.post("/api/runs", json=body(issues[0]), headers=headers)
    same_issue = await client.post("/api/runs", json=body(issues[0]), headers=headers)
    second = await client.post("/api/runs", json=body(issues[1]), headers=headers)
    over_budget = await client.post("/api/runs", json=body(issues[2]), headers=headers)

    assert first.status_code == 201 and second.status_code == 201
    assert same_issue.status_code == 429
    assert same_issue.json()["details"]["gate"] == "one_active_run"
    assert "already dispatched" in same_issue.json()["error"]
    assert over_budget.status_code == 429
    details = over_budget.json()["details"]
    assert details["gate"] == "daily_spawn_budget" and details["clears_at"].endswith("00:00")
    assert "it clears at" in over_budget.json()["error"]
    assert int(over_budget.headers["retry-after"]) > 0

    qa = await client.post("/api/runs", json=body(issues[2], mode="qa"), headers=headers)
    busy = await client.post("/api/runs", json=body(issues[3], mode="qa"), headers=headers)
    assert qa.status_code == 201
    assert busy.status_code == 429 and busy.json()["details"]["gate"] == "concurrency"
    assert "when one of them finishes" in busy.json()["error"]
    assert busy.json()["details"]["clears_at"] is None


async def test_a_qa_run_checks_the_pull_request_linked_to_the_issue(rt, client, issues):
    headers = await bearer()

    none = await client.post("/api/runs", json=body(issues[0], mode="qa"), headers=headers)
    linked = await client.post("/api/runs", json=body(issues[2], mode="qa"), headers=headers)

    assert none.status_code == 409 and "no pull request to check" in none.json()["error"]
    assert await runs.for_issue("octo-org/widgets", issues[0]) == []
    assert linked.status_code == 201, linked.text
    [run] = await runs.for_issue("octo-org/widgets", issues[2])
    assert run.target_pull is not None and run.target_pull["head_ref"] == f"fix-{issues[2]}"


async def test_bad_requests_say_what_is_wrong(rt, github, repo, client, issues):
    headers = await bearer()
    reader = await bearer("reader", scope="read")
    elsewhere = await bearer("elsewhere", repos=("octo-org/other",))

    assert (await client.post("/api/runs", json=body(issues[0]))).status_code == 401
    read_only = await client.post("/api/runs", json=body(issues[0]), headers=reader)
    assert read_only.status_code == 403 and "`agent` scope" in read_only.json()["error"]
    outside = await client.post("/api/runs", json=body(issues[0]), headers=elsewhere)
    assert outside.status_code == 403
    unknown = await client.post("/api/runs", json=body(999), headers=headers)
    assert unknown.status_code == 404
    bad_mode = await client.post("/api/runs", json=body(issues[0], mode="deploy"), headers=headers)
    assert bad_mode.status_code == 422 and bad_mode.json()["details"]["field"] == "mode"
    alerts_only = await client.post(
        "/api/runs", json=body(issues[0], mode="auto_investigate"), headers=headers
    )
    assert alerts_only.status_code == 422
    revise = await client.post("/api/runs", json=body(issues[0], mode="revise"), headers=headers)
    assert revise.status_code == 422 and "pr_follow_up" in revise.json()["error"]
    no_agent = {k: v for k, v in body(issues[0]).items() if k != "agent"}
    missing = await client.post("/api/runs", json=no_agent, headers=headers)
    assert missing.status_code == 422 and missing.json()["details"]["field"] == "agent"
    no_plan = await client.post(
        "/api/runs", json=body(issues[0], mode="implement"), headers=headers
    )
    assert no_plan.status_code == 409 and "no approved plan" in no_plan.json()["error"]


async def test_a_claimed_issue_keeps_its_labels_until_the_claim_is_released(
    rt, github, repo, client, issues
):
    _, repository = repo
    headers = await bearer()
    claimed = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    number, claim_id = claimed["issue"]["number"], claimed["claim"]["id"]

    other = await client.post("/api/runs", json=body(issues[1], claim=claim_id), headers=headers)
    assert other.status_code == 422 and other.json()["details"]["field"] == "claim"
    created = await client.post("/api/runs", json=body(number, claim=claim_id), headers=headers)
    run_id = created.json()["run"]["id"]
    assert (await claims.get(claim_id)).run_id == run_id
    await client.post(
        f"/api/runs/{run_id}/events",
        json={
            "type": "completed",
            "outcome": "investigation_complete",
            "summary": "planned",
            "cost_usd": 0.5,
            "turns": 3,
        },
        headers=headers,
    )
    await drain(rt)

    labels = github.label_names(repository, number)
    assert "agent/codex" in labels and "status/in-progress" in labels
    await client.post(
        f"/api/claims/{claim_id}/release", json={"outcome": "abandoned"}, headers=headers
    )
    labels = github.label_names(repository, number)
    assert "agent/codex" not in labels and "status/ready" in labels


async def test_a_harness_that_starts_before_its_announcement_is_still_announced(
    rt, github, repo, client, issues
):
    _, repository = repo
    headers = await bearer()
    run = (await client.post("/api/runs", json=body(issues[0]), headers=headers)).json()["run"]
    # The harness reports before any worker picked up the run's dispatch job.
    started = await client.post(
        f"/api/runs/{run['id']}/events", json={"type": "started"}, headers=headers
    )
    assert started.json()["state"] == "running"

    await drain(rt)

    labels = github.label_names(repository, issues[0])
    assert "status/in-progress" in labels and "agent/codex" in labels
    assert len(github.bot_comments(repository, issues[0])) == 1
