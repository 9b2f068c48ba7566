"""`dispatch serve`'s uvicorn (`app.server.Server`): a request still running when the grace ends,
or when a second signal comes, is answered 503 with the reason, and nothing is logged as a
crash."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from litestar import Litestar, get

from app.server import Server
from tests.harness import free_port


@pytest.mark.parametrize("second_signal", [False, True])
async def test_a_request_still_running_at_the_end_of_the_grace_gets_a_503(second_signal, caplog):
    entered = asyncio.Event()

    @get("/slow")
    async def slow() -> str:
        entered.set()
        await asyncio.sleep(60)
        return "too late"

    port = free_port()
    server = Server(Litestar([slow]), host="127.0.0.1", port=port, grace=30 if second_signal else 1)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(timeout=10) as client:
        request = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/slow"))
        await asyncio.wait_for(entered.wait(), 5)
        server.should_exit = True  # the first signal
        await asyncio.sleep(0.5)
        assert not request.done(), "a running request gets its grace"
        if second_signal:
            server.hurry()
        response = await asyncio.wait_for(request, 5)
    await asyncio.wait_for(serving, 5)

    assert response.status_code == 503
    assert "stopping" in response.json()["detail"]
    assert response.headers["retry-after"] == "5"
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
