"""Past a rate per token or per client address the portal answers 429 with `Retry-After`; the
counts live in Postgres, so a second server process sees the same limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from app.db import engine
from app.retention import service as retention
from tests.conftest import make_settings
from tests.harness import ServerProcess, settings_env

T = TypeVar("T")


@pytest.fixture
def settings(tmp_path, github, oidc):
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        portal_rate_per_token=5,
        portal_rate_per_address=8,
    )


async def in_one_window(attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt` from empty counts, again if the minute (the counting window) turned meanwhile: a
    loaded machine may take seconds over a few requests."""
    for _ in range(3):
        async with engine.connection() as connection:
            await connection.execute("DELETE FROM portal_rate")
            minute = await connection.fetchval("SELECT date_trunc('minute', now())")
        result = await attempt()
        async with engine.connection() as connection:
            if minute == await connection.fetchval("SELECT date_trunc('minute', now())"):
                return result
    raise AssertionError("the minute turned during every attempt")


async def test_too_many_requests_per_token_then_per_address(client, acme):
    _, token = acme

    async def attempt() -> tuple[list[int], httpx.Response, list[int]]:
        answers = [(await client.get(f"/portal/acme?token={token}")).status_code for _ in range(6)]
        limited = await client.get(f"/api/portal/acme?token={token}")
        # Guessing other tokens from the same address runs into the address's limit.
        guesses = [(await client.get(f"/portal/acme?token=dpt_{i}")).status_code for i in range(3)]
        return answers, limited, guesses

    answers, limited, guesses = await in_one_window(attempt)
    assert answers == [200] * 5 + [429]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["retry_after"] == int(limited.headers["retry-after"])
    assert limited.headers["cache-control"] == "no-store"
    assert guesses[-1] == 429 and set(guesses) <= {404, 429}


async def test_the_counts_are_shared_by_every_replica(client, acme, settings, database, tmp_path):
    _, token = acme
    other = ServerProcess(settings_env(settings, database), args=("--no-worker",))
    other.start(tmp_path / "replica.log")
    try:
        await other.wait_ready()
        async with httpx.AsyncClient(base_url=other.url) as replica:

            async def attempt() -> tuple[list[int], int]:
                here = [
                    (await client.get(f"/portal/acme?token={token}")).status_code for _ in "12345"
                ]
                there = await replica.get(f"/portal/acme?token={token}")
                return here, there.status_code

            here, there = await in_one_window(attempt)
        assert here == [200] * 5
        assert there == 429, other.output()
    finally:
        other.stop()


async def test_the_retention_job_forgets_finished_windows_only(rt, client, acme):
    _, token = acme
    await client.get(f"/portal/acme?token={token}")
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE portal_rate SET window_start = window_start - '2 min'::interval"
        )
    for _ in range(5):
        assert (await client.get(f"/portal/acme?token={token}")).status_code == 200

    planned = await retention.prune(rt, dry_run=True)
    assert {p.what: p.rows for p in planned.pruned}["portal rate windows"] == 2
    report = await retention.prune(rt)
    assert {p.what: p.rows for p in report.pruned}["portal rate windows"] == 2
    async with engine.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM portal_rate") == 2
    # This minute's counts are still there: the token is still at its limit.
    assert (await client.get(f"/portal/acme?token={token}")).status_code == 429
