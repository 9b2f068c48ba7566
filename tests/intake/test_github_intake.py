"""`POST /webhooks/github`: signed deliveries are journaled and queued in one go; everything
malformed gets a 4xx that says why and leaves nothing behind."""

from __future__ import annotations

import json

import httpx
import pytest

from app.db import engine
from app.intake import journal
from tests.harness import serve_in_process
from tests.webhooks import example, signed


async def journal_rows() -> list[dict]:
    async with engine.connection() as connection:
        rows = await connection.fetch("SELECT guid, event, action, state FROM delivery ORDER BY id")
    return [dict(row) for row in rows]


async def queued_jobs() -> int:
    async with engine.connection() as connection:
        return await connection.fetchval("SELECT count(*) FROM pgqueuer")


async def test_signed_delivery_is_journaled_and_queued(client, github):
    payload = example("installation/created")
    body, headers = signed(github.webhook_secret, "installation", payload)

    response = await client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == 202
    assert response.json() == {"delivery": headers["x-github-delivery"], "duplicate": False}
    assert await journal_rows() == [
        {
            "guid": headers["x-github-delivery"],
            "event": "installation",
            "action": "created",
            "state": "queued",
        }
    ]
    assert await queued_jobs() == 1


async def test_same_guid_twice_is_a_duplicate_and_queues_nothing(client, github):
    body, headers = signed(github.webhook_secret, "installation", example("installation/created"))

    first = await client.post("/webhooks/github", content=body, headers=headers)
    second = await client.post("/webhooks/github", content=body, headers=headers)

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"delivery": headers["x-github-delivery"], "duplicate": True}
    assert len(await journal_rows()) == 1
    assert await queued_jobs() == 1


async def test_event_nobody_handles_is_journaled_as_ignored(client, github):
    body, headers = signed(github.webhook_secret, "check_suite", example("check_suite/requested"))

    response = await client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == 202
    assert [row["state"] for row in await journal_rows()] == ["ignored"]
    assert await queued_jobs() == 0


async def test_ping_answers_200(client, github):
    body, headers = signed(github.webhook_secret, "ping", example("ping/payload"))

    response = await client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == 200
    assert response.json()["pong"] is True


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (lambda h: h.pop("x-hub-signature-256"), 401, "X-Hub-Signature-256"),
        (lambda h: h.update({"x-hub-signature-256": "sha256=" + "0" * 64}), 401, "invalid"),
        (lambda h: h.update({"x-hub-signature-256": "garbage"}), 401, "invalid"),
        (lambda h: h.pop("x-github-event"), 400, "X-GitHub-Event"),
        (lambda h: h.pop("x-github-delivery"), 400, "X-GitHub-Delivery"),
    ],
)
async def test_bad_headers_are_refused_and_store_nothing(client, github, mutate, status, message):
    body, headers = signed(github.webhook_secret, "installation", example("installation/created"))
    mutate(headers)

    response = await client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == status
    assert message in response.json()["error"]
    assert await journal_rows() == []
    assert await queued_jobs() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object")],
)
async def test_malformed_json_is_refused(client, github, body, message):
    _, headers = signed(github.webhook_secret, "issues", body)

    response = await client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert await journal_rows() == []


async def test_body_over_25_mib_is_413(client, github):
    body = json.dumps({"action": "opened", "pad": "x" * (25 * 1024 * 1024)}).encode()
    _, headers = signed(github.webhook_secret, "issues", body)

    response = await client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == 413
    assert await journal_rows() == []


async def test_body_just_under_the_limit_is_accepted(client, github):
    pad = 20 * 1024 * 1024
    body = json.dumps({"zen": "x" * pad, "hook_id": 1}).encode()
    _, headers = signed(github.webhook_secret, "ping", body)

    response = await client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == 200


async def test_nul_characters_in_issue_text_are_stored(rt, client, github, repo):
    from app.issues import cache
    from tests.harness import drain
    from tests.webhooks import for_repo

    installation, repository = repo
    issue = github.add_issue(repository, "Crash", "before\u0000after")
    payload = for_repo("issues/opened", installation, repository)
    payload["issue"] = {**payload["issue"], **issue}
    body, headers = signed(github.webhook_secret, "issues", payload)

    response = await client.post("/webhooks/github", content=body, headers=headers)
    await drain(rt)

    assert response.status_code == 202
    row = await journal.get(response.json()["delivery"])
    assert (row.state, row.last_error) == ("processed", None)
    # Postgres text holds no NUL: it reaches the issue cache as U+FFFD, the rest intact.
    cached = await cache.get(repository["full_name"], issue["number"])
    assert cached is not None and cached.body == "before\ufffdafter"


async def test_unconfigured_app_refuses_with_503(tmp_path, database, github):
    from app.config import load_settings
    from app.worker import build_runtime

    bare = build_runtime(load_settings(dispatch_data_dir=tmp_path, dispatch_secret_key="k" * 32))
    async with (
        serve_in_process(bare, database, worker=False) as base,
        httpx.AsyncClient() as client,
    ):
        response = await client.post(f"{base}/webhooks/github", content=b"{}")
        health = await client.get(f"{base}/healthz")

    assert response.status_code == 503
    assert "setup" in response.json()["error"]
    assert health.json()["github_app"] == "unconfigured"
