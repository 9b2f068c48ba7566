"""Issue 10, the low findings: each performs the attack and shows no harm."""

from __future__ import annotations

import json

import pytest

from app.config import ConfigError
from app.intake import bodies
from app.signing import InvalidToken, Signer, load_secret_key
from tests.agents.loop import AUDIENCE, create_run
from tests.conftest import make_settings
from tests.webhooks import example, signed


async def test_a_non_ascii_signature_is_a_401_not_a_500(client):
    body = json.dumps(example("issues/opened", installation_id=1)).encode()
    response = await client.post(
        "/webhooks/github",
        content=body,
        headers={
            "x-github-event": "issues",
            "x-github-delivery": "d-1",
            "x-hub-signature-256": ("sha256=é" + "0" * 63).encode(),
        },
    )
    assert response.status_code == 401


def test_a_non_ascii_viewer_token_is_refused_not_raised():
    signer = Signer(b"k" * 32)
    with pytest.raises(InvalidToken):
        signer.verify("stream", "abc.é")


async def test_a_non_ascii_viewer_token_is_a_404(rt, client, github, repo):
    run = await create_run(github, repo, state="running", workflow_run_id=1)
    response = await client.get(f"/runs/{run.id}", params={"token": "x.é"})
    assert response.status_code == 404


def test_an_empty_secret_key_file_is_refused(tmp_path, github):
    (tmp_path / "secret-key").write_text("\n")
    settings = make_settings(tmp_path, github, dispatch_secret_key=None)
    with pytest.raises(ConfigError, match="at least 32"):
        load_secret_key(settings)


async def test_junk_jwks_is_a_401_and_a_failing_issuer_answers_fast(rt, client, oidc, github, repo):
    import time

    run = await create_run(github, repo, state="running", workflow_run_id=2)
    token = oidc.token(
        AUDIENCE, repository=repo[1]["full_name"], repository_id=repo[1]["id"], run_id=2
    )
    oidc.fail_jwks_next(100, status=200)  # answers junk instead of a key set
    started = time.monotonic()
    answers = [
        (
            await client.post(
                f"/api/runs/{run.id}/events",
                json={"type": "started"},
                headers={"authorization": f"Bearer {token}"},
            )
        ).status_code
        for _ in range(5)
    ]
    assert answers == [401] * 5
    assert oidc.jwks_fetches == 1  # one fetch, not one per request
    assert time.monotonic() - started < 5


async def test_briefs_and_logs_are_refused_after_the_run_ends(client, oidc, github, repo):
    run = await create_run(github, repo, state="succeeded", workflow_run_id=3)
    headers = {
        "authorization": "Bearer "
        + oidc.token(
            AUDIENCE, repository=repo[1]["full_name"], repository_id=repo[1]["id"], run_id=3
        )
    }

    brief = await client.get(f"/api/runs/{run.id}/brief", headers=headers)
    log = await client.post(
        f"/api/runs/{run.id}/log", json={"seq": 1, "data": "x"}, headers=headers
    )

    assert brief.status_code == 409 and log.status_code == 409


async def test_an_oversized_or_unsized_body_is_refused_before_it_is_read(client):
    import asyncio

    # Only the headers: a server that read the body before answering would wait for 30 MB.
    reader, writer = await asyncio.open_connection(client.base_url.host, client.base_url.port)
    writer.write(
        b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: 31457280\r\n"
        b"x-hub-signature-256: sha256=" + b"0" * 64 + b"\r\nx-github-event: issues\r\n\r\n"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    unsigned = await client.post("/webhooks/github", content=b"x" * 2_000_000)

    assert status_line.split()[1] == b"413"
    assert unsigned.status_code == 401  # no signature header: the body is not even read


async def test_a_run_has_a_bounded_number_of_viewers(tmp_path, github, oidc, database):
    import asyncio

    import httpx

    from app.stream.links import viewer_token
    from app.worker import build_runtime
    from tests.agents.loop import SSEReader
    from tests.harness import serve_in_process

    rt = build_runtime(
        make_settings(tmp_path, github, dispatch_oidc_issuer=oidc.url, stream_viewers_per_run=1)
    )
    installation = github.add_installation("o")
    repository = github.add_repo(installation, "o/r")
    run = await create_run(github, (installation, repository), state="running", workflow_run_id=9)
    try:
        async with serve_in_process(rt, database, worker=False) as base:
            url = f"{base}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
            first = SSEReader(url).start()
            await asyncio.wait_for(first.opened.wait(), 10)
            answer = None
            async with httpx.AsyncClient(timeout=2) as http:
                for _ in range(20):  # until the first viewer's stream has subscribed
                    answer = await http.get(url)
                    if answer.status_code == 429:
                        break
                    await asyncio.sleep(0.1)
            await first.stop()
        assert answer is not None and answer.status_code == 429
        assert answer.headers["retry-after"] == "30"
    finally:
        await rt.close()


async def test_a_signed_webhook_without_a_length_is_refused(client, github):
    body, headers = signed(github.webhook_secret, "ping", {"zen": "hi", "hook_id": 1})

    async def chunked():  # no Content-Length: httpx sends it with Transfer-Encoding: chunked
        yield body

    response = await client.post("/webhooks/github", content=chunked(), headers=headers)

    assert response.status_code == 411
    assert "content-length" in response.json()["error"].lower()


async def test_only_a_few_large_bodies_are_read_at_once(client, github):
    import asyncio

    size = bodies.LARGE + 1000
    stalled = []
    try:
        # Senders that declare a large body, send its first byte and no more.
        for n in range(bodies.LARGE_AT_ONCE):
            reader, writer = await asyncio.open_connection(
                client.base_url.host, client.base_url.port
            )
            writer.write(
                b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\n"
                b"content-length: %d\r\nx-hub-signature-256: sha256=%s\r\n"
                b"x-github-event: ping\r\nx-github-delivery: slow-%d\r\n\r\n{"
                % (size, b"0" * 64, n)
            )
            await writer.drain()
            stalled.append((reader, writer))
        for _ in range(500):  # until the server is reading all of them
            if bodies.reading_large() == bodies.LARGE_AT_ONCE:
                break
            await asyncio.sleep(0.02)
        assert bodies.reading_large() == bodies.LARGE_AT_ONCE
        body, headers = signed(
            github.webhook_secret, "ping", {"zen": "x" * bodies.LARGE, "hook_id": 1}
        )

        # One more large body, whole and correctly signed: it waits for a place.
        fifth = asyncio.create_task(client.post("/webhooks/github", content=body, headers=headers))
        await asyncio.wait({fifth}, timeout=2)
        waited = not fifth.done()
        # One slow sender finishes (its signature is wrong): its place goes to the fifth.
        reader, writer = stalled.pop(0)
        writer.write(b" " * (size - 1))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        answer = await asyncio.wait_for(fifth, 30)

        assert waited
        assert status_line.split()[1] == b"401"
        assert answer.status_code == 200 and answer.json()["pong"] is True
    finally:
        for _, writer in stalled:
            writer.close()
