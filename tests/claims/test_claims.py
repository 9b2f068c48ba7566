"""Claims over HTTP: the most urgent, oldest ready issue nobody works on, labelled at GitHub; a
lease kept by heartbeats; a release that moves the issue as its outcome says; leases nobody
renewed return the issue to the queue; a person removing the agent's label ends the claim; every
refusal says why with the right status; everything audited with the token's name."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app import jobs
from app.claims import expiry as claim_expiry
from app.claims import records as claims
from app.db import engine
from app.events import Router
from app.issues import cache, onboarding
from app.tokens import service as tokens
from app.worker import job_registry
from tests.agents.loop import comment
from tests.webhooks import for_repo


@pytest.fixture
async def queue(rt, github, repo):
    """Ready issues of several priorities and ages, plus ones that are not claimable."""
    installation, repository = repo
    made = {}
    for title, labels, created in [
        ("old p2", ["status/ready", "priority/p2", "type/bug"], "2026-01-01T00:00:00Z"),
        ("new p1", ["status/ready", "priority/p1", "type/feature"], "2026-03-01T00:00:00Z"),
        ("old p1", ["status/ready", "priority/p1", "type/bug"], "2026-02-01T00:00:00Z"),
        ("no priority", ["status/ready"], "2025-01-01T00:00:00Z"),
        ("backlog p0", ["status/backlog", "priority/p0"], "2025-01-01T00:00:00Z"),
        ("taken p0", ["status/ready", "priority/p0", "agent/other"], "2025-01-01T00:00:00Z"),
    ]:
        made[title] = github.add_issue(repository, title, labels=labels, created_at=created)
    await onboarding.onboard(rt, installation, repository["full_name"])
    return made


async def token_headers(name="harness", scope="agent", repos=("octo-org/widgets",)):
    token = await tokens.create(name, scope, list(repos))
    return {"authorization": f"Bearer {token}"}


async def audit(action):
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT actor, issue_number FROM audit_log WHERE action = $1 ORDER BY id", action
        )
    return [(r["actor"], r["issue_number"]) for r in rows]


async def test_claims_take_the_most_urgent_oldest_ready_issue_and_label_it(
    rt, github, repo, client, queue
):
    _, repository = repo
    headers = await token_headers()

    first = await client.post("/api/claims", json={"agent": "codex"}, headers=headers)
    second = await client.post("/api/claims", json={"agent": "codex"}, headers=headers)

    assert first.status_code == 201, first.text
    body = first.json()
    assert body["issue"]["title"] == "old p1"
    assert body["claim"]["lease_expires_at"] and body["claim"]["agent"] == "codex"
    number = body["issue"]["number"]
    labels = github.label_names(repository, number)
    assert "agent/codex" in labels and "status/in-progress" in labels
    assert "status/ready" not in labels
    assert "agent/codex" in body["issue"]["labels"]  # the cache is already up to date
    assert second.json()["issue"]["title"] == "new p1"
    assert ("token:harness", number) in await audit("claim.create")

    titles = []
    while (
        more := await client.post("/api/claims", json={"agent": "x"}, headers=headers)
    ).status_code == 201:
        titles.append(more.json()["issue"]["title"])
    assert titles == ["old p2", "no priority"]
    assert more.status_code == 204 and more.content == b""


async def test_types_and_repositories_narrow_the_queue(rt, github, repo, client, queue):
    headers = await token_headers()

    feature = await client.post(
        "/api/claims", json={"agent": "a", "types": ["feature"]}, headers=headers
    )
    assert feature.json()["issue"]["title"] == "new p1"

    outside = await client.post(
        "/api/claims", json={"agent": "a", "repositories": ["octo-org/secret"]}, headers=headers
    )
    assert outside.status_code == 403 and "octo-org/secret" in outside.json()["error"]


async def test_an_issue_that_drifted_at_github_is_recached_and_skipped(
    rt, github, repo, client, queue
):
    _, repository = repo
    headers = await token_headers()
    # Someone took "old p1" on github.com while Dispatch was not looking.
    drifted = queue["old p1"]["number"]
    github.add_label_to_issue(repository, drifted, "agent/alice-bot")

    claimed = await client.post("/api/claims", json={"agent": "codex"}, headers=headers)

    assert claimed.json()["issue"]["title"] == "new p1"
    assert "agent/alice-bot" in (await cache.get("octo-org/widgets", drifted)).labels
    assert "agent/codex" not in github.label_names(repository, drifted)


async def test_heartbeat_and_release_outcomes(rt, github, repo, client, queue, clock):
    _, repository = repo
    headers = await token_headers()

    async def claim():
        body = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
        return body["claim"], body["issue"]["number"]

    first, number = await claim()
    clock.advance(minutes=20)
    beat = await client.post(f"/api/claims/{first['id']}/heartbeat", headers=headers)
    assert beat.status_code == 200
    assert beat.json()["claim"]["lease_expires_at"] > first["lease_expires_at"]

    # abandoned: back in the queue, claimable again at once
    done = await client.post(
        f"/api/claims/{first['id']}/release", json={"outcome": "abandoned"}, headers=headers
    )
    assert done.status_code == 200 and done.json()["claim"]["state"] == "released"
    labels = github.label_names(repository, number)
    assert "status/ready" in labels and "agent/codex" not in labels
    again, again_number = await claim()
    assert again_number == number

    # blocked: the label and the reason as a comment, mentions defused
    blocked = await client.post(
        f"/api/claims/{again['id']}/release",
        json={"outcome": "blocked", "reason": "needs a STRIPE_KEY from @octo-org/ops"},
        headers=headers,
    )
    assert blocked.status_code == 200
    labels = github.label_names(repository, number)
    assert "dispatch/blocked" in labels and "agent/codex" not in labels
    [comment] = [c for c in github.bot_comments(repository, number) if "Blocked" in c]
    assert "STRIPE_KEY" in comment and "@octo-org" not in comment

    # done with a pull request: in review
    third, third_number = await claim()
    pr = "https://github.com/octo-org/widgets/pull/7"
    finished = await client.post(
        f"/api/claims/{third['id']}/release",
        json={"outcome": "done", "pr_url": pr},
        headers=headers,
    )
    assert finished.json()["claim"]["pr_url"] == pr
    labels = github.label_names(repository, third_number)
    assert "status/in-review" in labels and "agent/codex" not in labels

    # done without one: done
    fourth, fourth_number = await claim()
    await client.post(
        f"/api/claims/{fourth['id']}/release", json={"outcome": "done"}, headers=headers
    )
    assert "status/done" in github.label_names(repository, fourth_number)
    assert [a for a, _ in await audit("claim.release")] == ["token:harness"] * 4
    assert len(await audit("claim.heartbeat")) == 1


async def test_refusals_say_why(rt, github, repo, client, queue):
    headers = await token_headers()
    other = await token_headers("other-harness")
    reader = await token_headers("reader", scope="read")
    claim = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    claim_id = claim["claim"]["id"]

    unknown = await client.post("/api/claims/999999/heartbeat", headers=headers)
    assert unknown.status_code == 404
    theirs = await client.post(f"/api/claims/{claim_id}/heartbeat", headers=other)
    assert theirs.status_code == 403 and "another token" in theirs.json()["error"]
    bad_outcome = await client.post(
        f"/api/claims/{claim_id}/release", json={"outcome": "finished"}, headers=headers
    )
    assert bad_outcome.status_code == 422
    assert bad_outcome.json()["details"]["field"] == "outcome"
    no_reason = await client.post(
        f"/api/claims/{claim_id}/release", json={"outcome": "blocked"}, headers=headers
    )
    assert no_reason.status_code == 422 and no_reason.json()["details"]["field"] == "reason"
    bad_agent = await client.post("/api/claims", json={"agent": "has space"}, headers=headers)
    assert bad_agent.status_code == 422 and bad_agent.json()["details"]["field"] == "agent"
    missing = await client.post("/api/claims", json={}, headers=headers)
    assert missing.status_code == 422 and missing.json()["details"]["field"] == "agent"
    read_only = await client.post("/api/claims", json={"agent": "codex"}, headers=reader)
    assert read_only.status_code == 403 and "`agent` scope" in read_only.json()["error"]
    assert (await client.post("/api/claims", json={"agent": "codex"})).status_code == 401

    released = await client.post(
        f"/api/claims/{claim_id}/release", json={"outcome": "abandoned"}, headers=headers
    )
    assert released.status_code == 200
    twice = await client.post(
        f"/api/claims/{claim_id}/release", json={"outcome": "abandoned"}, headers=headers
    )
    assert twice.status_code == 409 and "released" in twice.json()["error"]
    late_beat = await client.post(f"/api/claims/{claim_id}/heartbeat", headers=headers)
    assert late_beat.status_code == 409


async def test_a_silent_lease_expires_and_the_issue_returns(rt, github, repo, client, queue, clock):
    _, repository = repo
    headers = await token_headers()
    body = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    number = body["issue"]["number"]

    clock.advance(minutes=29)
    assert await claim_expiry.expire_due(rt) == 0
    clock.advance(minutes=2)
    # The worker's every-minute schedule is what ends it.
    cron, expire_claims = job_registry(rt, Router()).schedules[jobs.EXPIRE_CLAIMS]
    assert cron == rt.settings.claim_expiry_schedule == "* * * * *"
    await expire_claims()
    assert await claim_expiry.expire_due(rt) == 0

    labels = github.label_names(repository, number)
    assert "status/ready" in labels and "agent/codex" not in labels
    expired = await claims.get(body["claim"]["id"])
    assert (expired.state.value, expired.outcome.value) == ("expired", "abandoned")
    beat = await client.post(f"/api/claims/{expired.id}/heartbeat", headers=headers)
    assert beat.status_code == 409 and "expired" in beat.json()["error"]
    again = await client.post("/api/claims", json={"agent": "codex"}, headers=headers)
    assert again.json()["issue"]["number"] == number
    assert [a for a, _ in await audit("claim.expire")] == ["dispatch"]


async def test_a_lease_past_its_end_cannot_be_renewed(rt, github, repo, client, queue, clock):
    headers = await token_headers()
    body = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    clock.advance(minutes=31)
    late = await client.post(f"/api/claims/{body['claim']['id']}/heartbeat", headers=headers)
    assert late.status_code == 409 and "ran out" in late.json()["error"]


async def test_a_person_removing_the_agent_label_ends_the_claim(
    rt, github, repo, client, queue, deliver
):
    installation, repository = repo
    headers = await token_headers()
    body = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    number = body["issue"]["number"]

    github.remove_label_from_issue(repository, number, "agent/codex")
    payload = for_repo("issues/unlabeled", installation, repository)
    payload["issue"] = {
        **payload["issue"],
        "number": number,
        "labels": [{"name": n} for n in github.label_names(repository, number)],
    }
    payload["label"] = {**payload["label"], "name": "agent/codex"}
    payload["sender"] = {**payload["sender"], "login": "alice", "type": "User"}
    await deliver("issues", payload)

    ended = await claims.get(body["claim"]["id"])
    assert (ended.state.value, ended.ended_by) == ("revoked", "alice")
    assert ("alice", number) in await audit("claim.revoke")
    beat = await client.post(f"/api/claims/{ended.id}/heartbeat", headers=headers)
    assert beat.status_code == 409 and "alice" in beat.json()["error"]


async def test_lease_length_is_a_setting(rt, github, repo, client, queue):
    headers = await token_headers()
    body = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    claim = await claims.get(body["claim"]["id"])
    assert claim.lease_expires_at - claim.claimed_at == timedelta(minutes=30)


async def test_dispatch_status_shows_who_holds_the_issue_and_until_when(
    rt, github, repo, client, queue, deliver
):
    installation, repository = repo
    headers = await token_headers()
    body = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    number = body["issue"]["number"]
    claim = await claims.get(body["claim"]["id"])

    await deliver(
        "issue_comment", comment(github, (installation, repository), number, "/dispatch status")
    )

    [reply] = [c for c in github.bot_comments(repository, number) if "Status of" in c]
    assert "claimed by `agent/codex` with API token `harness`" in reply
    assert f"until {claim.lease_expires_at:%Y-%m-%d %H:%M} UTC" in reply
    assert "holds it (claim #" in reply


async def test_github_failing_mid_claim_claims_nothing(rt, github, repo, client, queue):
    _, repository = repo
    headers = await token_headers()
    number = queue["old p1"]["number"]
    # Removing `status/ready` fails (after githubkit's retries), when the agent's label and
    # `status/in-progress` are already on: the claim is not committed, and they come off again.
    github.fail_next(None, 502, method="DELETE", path=re.compile(r".*/labels/status(%2F|/)ready$"))

    failed = await client.post("/api/claims", json={"agent": "codex"}, headers=headers)

    github.clear_faults()
    assert failed.status_code == 502 and "retry" in failed.json()["error"]
    async with engine.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM claim") == 0
    assert github.calls_to("DELETE", re.compile(r".*/labels/status(%2F|/)ready$"))
    labels = github.label_names(repository, number)
    assert "status/ready" in labels and "agent/codex" not in labels
    assert "status/in-progress" not in labels
    again = await client.post("/api/claims", json={"agent": "codex"}, headers=headers)
    assert again.status_code == 201 and again.json()["issue"]["number"] == number


async def test_closing_a_claimed_issue_ends_the_claim(rt, github, repo, client, queue, deliver):
    installation, repository = repo
    headers = await token_headers()
    body = (await client.post("/api/claims", json={"agent": "codex"}, headers=headers)).json()
    number = body["issue"]["number"]

    github.update_issue(repository, number, state="closed")
    payload = for_repo("issues/reopened", installation, repository, action="closed")
    payload["issue"] = {**payload["issue"], "number": number, "state": "closed"}
    payload["sender"] = {**payload["sender"], "login": "alice", "type": "User"}
    await deliver("issues", payload)

    ended = await claims.get(body["claim"]["id"])
    assert (ended.state.value, ended.ended_by) == ("revoked", "alice")
    labels = github.label_names(repository, number)
    assert "status/done" in labels and "agent/codex" not in labels
    late = await client.post(
        f"/api/claims/{ended.id}/release", json={"outcome": "abandoned"}, headers=headers
    )
    assert late.status_code == 409
