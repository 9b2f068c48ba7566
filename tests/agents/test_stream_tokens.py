"""The agent job's stream token: issued only to the run's own Actions job (OIDC), it posts log
chunks and `started`/`progress` for that one run while the run is active, and nothing else; a
re-run attempt replaces it, the run's end or six hours kill it, and only its hash is stored."""

from __future__ import annotations

import pytest

from app.agents import runs
from app.agents.stream_tokens import digest
from app.db import engine
from app.tokens import service as tokens
from tests.agents.loop import AUDIENCE, create_run

WORKFLOW_RUN = 555001


@pytest.fixture
async def dispatched(rt, github, repo):
    return await create_run(github, repo, state="dispatched", workflow_run_id=WORKFLOW_RUN)


def oidc_headers(oidc, repository, **claims):
    values = {
        "repository": repository["full_name"],
        "repository_id": repository["id"],
        "run_id": WORKFLOW_RUN,
        **claims,
    }
    return {"authorization": f"Bearer {oidc.token(AUDIENCE, **values)}"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def stream_token(client, oidc, repository, run_id, **claims) -> str:
    response = await client.post(
        f"/api/runs/{run_id}/stream-token", headers=oidc_headers(oidc, repository, **claims)
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()["token"]


async def counts(run_id: int) -> tuple[int, int]:
    async with engine.connection() as connection:
        events = await connection.fetchval(
            "SELECT count(*) FROM run_event WHERE run_id = $1", run_id
        )
        chunks = await connection.fetchval(
            "SELECT count(*) FROM log_chunk WHERE run_id = $1", run_id
        )
    return events, chunks


async def test_a_stream_token_streams_and_does_nothing_else(client, oidc, repo, dispatched):
    token = await stream_token(client, oidc, repo[1], dispatched.id)
    url = f"/api/runs/{dispatched.id}"

    started = await client.post(f"{url}/events", json={"type": "started"}, headers=bearer(token))
    progress = await client.post(
        f"{url}/events", json={"type": "progress", "message": "half way"}, headers=bearer(token)
    )
    log = await client.post(f"{url}/log", json={"seq": 1, "data": "hi\n"}, headers=bearer(token))
    assert (started.status_code, progress.status_code, log.status_code) == (202, 202, 200)
    assert started.json()["state"] == "running"

    refused = [
        await client.post(f"{url}/events", json=body, headers=bearer(token))
        for body in (
            {"type": "plan", "body": "## Summary\nme"},
            {"type": "blocker", "reason": "x", "category": "missing_env"},
            {"type": "pr", "number": 1, "url": "https://github.com/o/r/pull/1"},
            {
                "type": "completed",
                "outcome": "completed",
                "summary": "",
                "cost_usd": 0,
                "turns": 0,
            },
        )
    ]
    brief = await client.get(f"{url}/brief", headers=bearer(token))
    another = await client.post(f"{url}/stream-token", headers=bearer(token))
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert "only post log chunks" in refused[0].json()["error"]
    assert (brief.status_code, another.status_code) == (403, 403)
    assert await counts(dispatched.id) == (2, 1)
    assert (await runs.get(dispatched.id)).state.value == "running"


async def test_only_the_hash_is_stored(client, oidc, repo, dispatched):
    token = await stream_token(client, oidc, repo[1], dispatched.id)
    async with engine.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM run_stream_token")
    assert row["token_hash"] == digest(token)
    assert token not in str(dict(row))
    assert token.startswith("dst_") and len(token) > 40


async def test_a_stream_token_is_for_its_own_run_only(github, client, oidc, repo, dispatched):
    token = await stream_token(client, oidc, repo[1], dispatched.id)
    other = await create_run(github, repo, state="dispatched", workflow_run_id=555002)
    response = await client.post(
        f"/api/runs/{other.id}/log", json={"seq": 1, "data": "x"}, headers=bearer(token)
    )
    forged = await client.post(
        f"/api/runs/{dispatched.id}/log",
        json={"seq": 1, "data": "x"},
        headers=bearer(token[:-2] + ("aa" if not token.endswith("aa") else "bb")),
    )
    assert (response.status_code, forged.status_code) == (401, 401)
    assert await counts(other.id) == (0, 0) and await counts(dispatched.id) == (0, 0)


async def test_it_dies_with_the_run_and_after_six_hours(client, oidc, repo, dispatched, clock):
    token = await stream_token(client, oidc, repo[1], dispatched.id)
    clock.advance(hours=6, minutes=1)
    expired = await client.post(
        f"/api/runs/{dispatched.id}/log", json={"seq": 1, "data": "x"}, headers=bearer(token)
    )
    assert expired.status_code == 401 and "expired" in expired.json()["error"]

    token = await stream_token(client, oidc, repo[1], dispatched.id)
    await runs.update(dispatched.id, state="failed")
    ended = await client.post(
        f"/api/runs/{dispatched.id}/log", json={"seq": 1, "data": "x"}, headers=bearer(token)
    )
    assert ended.status_code == 401 and "ended" in ended.json()["error"]
    late = await client.post(
        f"/api/runs/{dispatched.id}/stream-token", headers=oidc_headers(oidc, repo[1])
    )
    assert late.status_code == 409
    assert await counts(dispatched.id) == (0, 0)


async def test_a_rerun_replaces_the_token_and_an_older_attempt_cannot_take_it_back(
    client, oidc, repo, dispatched
):
    first = await stream_token(client, oidc, repo[1], dispatched.id, run_attempt=1)
    second = await stream_token(client, oidc, repo[1], dispatched.id, run_attempt=2)
    old = await client.post(
        f"/api/runs/{dispatched.id}/log", json={"seq": 1, "data": "x"}, headers=bearer(first)
    )
    new = await client.post(
        f"/api/runs/{dispatched.id}/log", json={"seq": 1, "data": "x"}, headers=bearer(second)
    )
    back = await client.post(
        f"/api/runs/{dispatched.id}/stream-token",
        headers=oidc_headers(oidc, repo[1], run_attempt=1),
    )
    assert (old.status_code, new.status_code, back.status_code) == (401, 200, 409)


async def test_only_the_runs_actions_job_gets_one(client, oidc, repo, dispatched):
    api_token = await tokens.create("harness", "agent", ["octo-org/widgets"])
    with_api_token = await client.post(
        f"/api/runs/{dispatched.id}/stream-token", headers=bearer(api_token)
    )
    other_workflow_run = await client.post(
        f"/api/runs/{dispatched.id}/stream-token",
        headers=oidc_headers(oidc, repo[1], run_id=999),
    )
    anonymous = await client.post(f"/api/runs/{dispatched.id}/stream-token")
    assert with_api_token.status_code == 403 and "OIDC" in with_api_token.json()["error"]
    assert (other_workflow_run.status_code, anonymous.status_code) == (403, 401)
    async with engine.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM run_stream_token") == 0
