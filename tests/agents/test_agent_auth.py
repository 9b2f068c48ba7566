"""Only the run's own workflow job (or a harness with an agent token for the repository) may
report for a run; forged, expired, wrong-audience, wrong-repository and other-run tokens are
refused, and nothing is written."""

from __future__ import annotations

import pytest

from app.agents import runs
from app.db import engine
from app.tokens import service as tokens
from tests.agents.loop import AUDIENCE, create_run


@pytest.fixture
async def dispatched(rt, github, repo):
    return await create_run(github, repo, state="dispatched", workflow_run_id=555001)


def claims_for(repository, **overrides):
    values = {
        "repository": repository["full_name"],
        "repository_id": repository["id"],
        "run_id": 555001,
    }
    values.update(overrides)
    return values


async def written(run_id: int) -> tuple[int, int]:
    async with engine.connection() as connection:
        events = await connection.fetchval(
            "SELECT count(*) FROM run_event WHERE run_id = $1", run_id
        )
        chunks = await connection.fetchval(
            "SELECT count(*) FROM log_chunk WHERE run_id = $1", run_id
        )
    return events, chunks


async def test_the_runs_own_token_is_accepted(client, oidc, repo, dispatched):
    token = oidc.token(AUDIENCE, **claims_for(repo[1]))
    headers = {"authorization": f"Bearer {token}"}

    event = await client.post(
        f"/api/runs/{dispatched.id}/events", json={"type": "started"}, headers=headers
    )
    log = await client.post(
        f"/api/runs/{dispatched.id}/log", json={"seq": 1, "data": "hello\n"}, headers=headers
    )
    again = await client.post(
        f"/api/runs/{dispatched.id}/log", json={"seq": 1, "data": "hello\n"}, headers=headers
    )

    assert event.status_code == 202 and event.json()["state"] == "running"
    assert log.json()["stored"] is True and again.json()["stored"] is False
    assert await written(dispatched.id) == (1, 1)


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda o, r: o.forged_token(AUDIENCE, **claims_for(r)), 401, "invalid"),
        (lambda o, r: o.expired_token(AUDIENCE, **claims_for(r)), 401, "expired"),
        (lambda o, r: o.token("https://someone-else.example", **claims_for(r)), 401, "audience"),
        (lambda o, r: o.unsigned_token(AUDIENCE, **claims_for(r)), 401, "RS256"),
        (lambda o, r: o.token(AUDIENCE, algorithm="HS256", **claims_for(r)), 401, "RS256"),
        (
            lambda o, r: o.token(AUDIENCE, **claims_for(r, repository_id=99999999)),
            403,
            "another repository",
        ),
        (lambda o, r: o.token(AUDIENCE, **claims_for(r, run_id=123)), 403, "another workflow run"),
        (lambda o, r: "not-a-jwt", 401, "JWT"),
    ],
)
async def test_bad_tokens_are_refused_and_write_nothing(
    client, oidc, repo, dispatched, make, status, reason
):
    headers = {"authorization": f"Bearer {make(oidc, repo[1])}"}

    event = await client.post(
        f"/api/runs/{dispatched.id}/events", json={"type": "started"}, headers=headers
    )
    log = await client.post(
        f"/api/runs/{dispatched.id}/log", json={"seq": 1, "data": "x"}, headers=headers
    )
    brief = await client.get(f"/api/runs/{dispatched.id}/brief", headers=headers)

    assert {event.status_code, log.status_code, brief.status_code} == {status}
    assert reason in event.json()["error"]
    assert await written(dispatched.id) == (0, 0)
    assert (await runs.get(dispatched.id)).state.value == "dispatched"


async def test_a_token_from_another_issuer_is_refused(client, repo, dispatched):
    from tests.fakes.oidc import FakeOIDCIssuer

    with FakeOIDCIssuer() as stranger:
        token = stranger.token(AUDIENCE, **claims_for(repo[1]))
    response = await client.post(
        f"/api/runs/{dispatched.id}/events",
        json={"type": "started"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


async def test_missing_token_is_401(client, dispatched):
    response = await client.post(f"/api/runs/{dispatched.id}/events", json={"type": "started"})
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]


async def test_agent_api_tokens_work_only_on_their_repositories(client, repo, dispatched):
    mine = await tokens.create("harness", "agent", ["octo-org/widgets"])
    elsewhere = await tokens.create("other", "agent", ["octo-org/other"])

    ok = await client.post(
        f"/api/runs/{dispatched.id}/events",
        json={"type": "started"},
        headers={"authorization": f"Bearer {mine}"},
    )
    refused = await client.post(
        f"/api/runs/{dispatched.id}/events",
        json={"type": "started"},
        headers={"authorization": f"Bearer {elsewhere}"},
    )

    assert ok.status_code == 202
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"type": "launch"}, "`type` must be one of"),
        ({"type": "completed", "outcome": "completed", "cost_usd": 1, "turns": 2}, "summary"),
        ({"type": "blocker", "reason": "x", "category": "vibes"}, "category"),
        ({"type": "pr", "url": "u"}, "number"),
        ({"type": "plan", "body": ""}, "body"),
    ],
)
async def test_malformed_events_are_422_naming_the_field(
    client, oidc, repo, dispatched, body, named
):
    token = oidc.token(AUDIENCE, **claims_for(repo[1]))
    response = await client.post(
        f"/api/runs/{dispatched.id}/events", json=body, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422
    assert named in response.json()["error"]


async def test_reports_after_the_end_are_409(client, oidc, repo, dispatched):
    token = oidc.token(AUDIENCE, **claims_for(repo[1]))
    headers = {"authorization": f"Bearer {token}"}
    done = {
        "type": "completed",
        "outcome": "failed",
        "summary": "gave up",
        "cost_usd": 0.5,
        "turns": 3,
    }

    first = await client.post(f"/api/runs/{dispatched.id}/events", json=done, headers=headers)
    second = await client.post(f"/api/runs/{dispatched.id}/events", json=done, headers=headers)

    assert first.status_code == 202 and second.status_code == 409
