"""A viewer whose connection drops (a real socket torn down mid-stream, as when a phone loses its
signal) reconnects with `Last-Event-ID` and gets exactly what it missed, then the live rest; the
server lets go of the dropped viewer at once, so it does not count against the run's viewers."""

from __future__ import annotations

import asyncio

import pytest

from app.agents import runs
from app.stream import chunks
from app.stream.links import viewer_token
from tests.agents.loop import SSEReader, create_run
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path, github, oidc):
    # One viewer per run: the reconnect gets in only if the dropped one was let go.
    return make_settings(tmp_path, github, dispatch_oidc_issuer=oidc.url, stream_viewers_per_run=1)


@pytest.fixture
async def run(rt, github, repo):
    return await create_run(github, repo, state="running", workflow_run_id=7101)


async def read_until(reader: asyncio.StreamReader, needle: bytes, timeout: float = 10) -> bytes:
    seen = b""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            block = await reader.read(4096)
            assert block, f"the server closed the stream: {seen!r}"
            seen += block
    return seen


async def test_a_dropped_viewer_resumes_from_its_last_event_id(rt, client, run):
    for seq in (1, 2, 3):
        await chunks.append(run.id, seq, f"line {seq}\n")
    path = f"/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
    host, port = client.base_url.host, client.base_url.port

    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    seen = await read_until(reader, b"line 3")
    assert b" 200 OK" in seen.split(b"\r\n", 1)[0]
    assert seen.index(b"line 1") < seen.index(b"line 2") < seen.index(b"line 3")
    writer.transport.abort()  # torn down mid-stream: no goodbye

    await chunks.append(run.id, 4, "line 4\n")
    await chunks.append(run.id, 5, "line 5\n")
    viewer = SSEReader(f"{client.base_url}{path}", headers={"Last-Event-ID": "3"}).start()
    assert await viewer.wait_logs(2) == [(4, "line 4\n"), (5, "line 5\n")]

    await chunks.append(run.id, 6, "line 6\n")
    await runs.update(run.id, state="succeeded")
    await chunks.announce_end(run.id, "succeeded")
    await asyncio.wait_for(viewer.ended.wait(), 10)

    assert viewer.logs() == [(4, "line 4\n"), (5, "line 5\n"), (6, "line 6\n")]
    assert viewer.events[-1] == ("end", "", "succeeded")
