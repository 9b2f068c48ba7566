"""The live stream: replay from `Last-Event-ID`, then live chunks, then `end`; a viewer token
opens exactly one run and a wrong one is a plain 404."""

from __future__ import annotations

import asyncio
import re

import pytest

from app.agents import runs
from app.signing import Signer
from app.stream import chunks
from app.stream.links import subject, viewer_token
from app.tokens import service as tokens
from tests.agents.loop import SSEReader, create_run


@pytest.fixture
async def run(rt, github, repo):
    return await create_run(github, repo, state="running", workflow_run_id=7001)


async def test_replay_from_last_event_id_then_live_then_end(rt, client, run):
    for seq in range(1, 6):
        await chunks.append(run.id, seq, f"line {seq}\n")
    agent = await tokens.create("agent", "agent", [])
    url = f"{client.base_url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"

    viewer = SSEReader(url, headers={"Last-Event-ID": "2"}).start()
    # The replay is over once 3-5 are here: 6 can only come live.
    assert await viewer.wait_logs(3) == [(3, "line 3\n"), (4, "line 4\n"), (5, "line 5\n")]
    posted = await client.post(
        f"/api/runs/{run.id}/log",
        json={"seq": 6, "data": "live!\n"},
        headers={"authorization": f"Bearer {agent}"},
    )
    assert posted.json()["stored"] is True
    done = {
        "type": "completed",
        "outcome": "completed",
        "summary": "ok",
        "cost_usd": 0.1,
        "turns": 1,
    }
    await client.post(
        f"/api/runs/{run.id}/events", json=done, headers={"authorization": f"Bearer {agent}"}
    )
    await asyncio.wait_for(viewer.ended.wait(), 10)

    assert viewer.logs() == [(3, "line 3\n"), (4, "line 4\n"), (5, "line 5\n"), (6, "live!\n")]
    assert viewer.events[-1] == ("end", "", "succeeded")


async def test_a_finished_run_replays_and_ends_at_once(rt, client, run):
    await chunks.append(run.id, 1, "only line\n")
    await runs.update(run.id, state="failed")

    viewer = SSEReader(
        f"{client.base_url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
    ).start()
    await asyncio.wait_for(viewer.ended.wait(), 10)

    assert viewer.logs() == [(1, "only line\n")]
    assert viewer.events[-1][2] == "failed"


async def test_tokens_open_one_run_only(rt, client, run):
    other_run = run.id + 1000
    cases = [
        None,
        "garbage",
        viewer_token(rt, other_run, run.viewer_key),
        viewer_token(rt, run.id, "a key the run does not have"),
        Signer(b"another key" * 4).sign("stream", subject(run.id, run.viewer_key), 60),
        rt.signer.sign("stream", subject(run.id, run.viewer_key), -10),
        rt.signer.sign("setup-state", subject(run.id, run.viewer_key), 60),
    ]
    for token in cases:
        params = {"token": token} if token else {}
        stream = await client.get(f"/runs/{run.id}/stream", params=params)
        page = await client.get(f"/runs/{run.id}", params=params)
        assert stream.status_code == 404 and page.status_code == 404
        assert "run" in stream.json()["error"]


async def test_the_viewer_page_sends_no_referrer(rt, client, run):
    page = await client.get(
        f"/runs/{run.id}", params={"token": viewer_token(rt, run.id, run.viewer_key)}
    )

    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "EventSource" in page.text and f"/runs/{run.id}/stream?token=" in page.text


async def test_the_viewer_page_and_stream_cannot_be_framed_or_sniffed(rt, client, run):
    token = viewer_token(rt, run.id, run.viewer_key)

    page = await client.get(f"/runs/{run.id}", params={"token": token})
    async with client.stream("GET", f"/runs/{run.id}/stream", params={"token": token}) as stream:
        stream_headers = stream.headers

    policy = dict(
        part.split(" ", 1) for part in page.headers["content-security-policy"].split("; ")
    )
    assert policy["frame-ancestors"] == "'none'"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    # Only the page's own script runs: the one carrying this response's nonce.
    nonce = re.fullmatch(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    assert f'<script nonce="{nonce}">' in page.text
    assert "unsafe-inline" not in policy["script-src"] and policy["default-src"] == "'none'"
    assert stream_headers["x-content-type-options"] == "nosniff"
    assert stream_headers["referrer-policy"] == "no-referrer"


async def test_a_chunk_that_commits_late_is_not_lost(rt, client, run):
    viewer = SSEReader(
        f"{client.base_url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
    ).start()
    await asyncio.wait_for(viewer.ready.wait(), 10)

    # Whether the viewer's replay or its notifications see them, 3 is there before 2 commits.
    await chunks.append(run.id, 1, "one\n")
    await chunks.append(run.id, 3, "three\n")  # a retried post of 2 is still in flight
    await chunks.append(run.id, 2, "two\n")
    await chunks.append(run.id, 4, "x" * 9000)  # too big for the notification
    await runs.update(run.id, state="succeeded")
    await chunks.announce_end(run.id, "succeeded")
    await asyncio.wait_for(viewer.ended.wait(), 10)

    assert [seq for seq, _ in viewer.logs()] == [1, 2, 3, 4]
    assert viewer.logs()[3][1] == "x" * 9000
